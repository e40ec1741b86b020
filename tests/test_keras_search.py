"""Keras search items: checkpoints of a long run equal shorter runs; reruns are identical."""

import json

import numpy as np
import pytest

from fmnist_mlp.data import Split
from fmnist_mlp.search import Trial, read_item

keras_search = pytest.importorskip("fmnist_mlp.keras_search")
keras = keras_search.keras


@pytest.fixture(scope="module")
def small_data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 32)).astype(np.float32)  # (C, D)

    def split(n):
        labels = rng.integers(0, 10, n)
        X = centres[labels] + rng.normal(scale=1.5, size=(n, 32)).astype(np.float32)  # (n, D)
        return Split(X, np.eye(10, dtype=np.float32)[labels])

    return split(600), split(200)


TRIAL = Trial(hidden_layers=2, hidden_units=16, learning_rate=0.05, batch_size=32, l2=0.001)


def test_first_epochs_of_a_long_run_are_the_short_run(tmp_path, small_data):
    train, val = small_data
    long = keras_search.train_item(TRIAL, train, val, (2, 4), 7, 5, tmp_path / "long")
    short = keras_search.train_item(TRIAL, train, val, (2,), 7, 5, tmp_path / "short")
    assert long[2]["val_accuracy"] == short[2]["val_accuracy"]
    assert long[2]["val_loss"] == short[2]["val_loss"]
    checkpoint = keras.models.load_model(tmp_path / "long" / "model_e2.keras")
    final = keras.models.load_model(tmp_path / "short" / "model_e2.keras")
    for a, b in zip(checkpoint.get_weights(), final.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        keras.models.load_model(tmp_path / "long" / "model_e4.keras").get_weights()[0],
        checkpoint.get_weights()[0])


def test_item_is_deterministic_and_readable(tmp_path, small_data):
    train, val = small_data
    a = keras_search.train_item(TRIAL, train, val, (1, 3), 3, 5, tmp_path / "a")
    b = keras_search.train_item(TRIAL, train, val, (1, 3), 3, 5, tmp_path / "b")
    assert {e: (m["val_accuracy"], m["val_loss"]) for e, m in a.items()} == \
           {e: (m["val_accuracy"], m["val_loss"]) for e, m in b.items()}
    item = read_item(tmp_path / "a", TRIAL, (1, 3))
    assert item["epochs"][3]["seconds"] >= item["epochs"][1]["seconds"] > 0
    history = (tmp_path / "a" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss,train_accuracy,val_accuracy"
    assert len(history) == 4
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["trial"]["batch_size"] == 32


def test_steps_per_execution_does_not_change_results(tmp_path, small_data):
    train, val = small_data
    one = keras_search.train_item(TRIAL, train, val, (2,), 5, 1, tmp_path / "one")
    many = keras_search.train_item(TRIAL, train, val, (2,), 5, 8, tmp_path / "many")
    assert one[2]["val_loss"] == pytest.approx(many[2]["val_loss"], abs=1e-6)
