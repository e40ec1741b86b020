"""Keras search items (fmnist_mlp/keras_search/): checkpoints of a long run equal shorter runs;
reruns are identical; a run that diverges (its loss past 100 ln(classes)) keeps no model."""

import json

import numpy as np
import pytest

from fmnist_mlp.core.data import Split
from fmnist_mlp.grid.search import Trial
from fmnist_mlp.selection.ranking import read_item

keras_search = pytest.importorskip("fmnist_mlp.keras_search.train")
keras = keras_search.keras


def outs(root, name):
    """train_item's item directory and curves file."""
    return root / name, root / f"{name}.csv"


@pytest.fixture(scope="module")
def small_data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 32)).astype(np.float32)  # (C, D)

    def split(n):
        labels = rng.integers(0, 10, n)
        X = centres[labels] + rng.normal(scale=1.5, size=(n, 32)).astype(np.float32)  # (n, D)
        return Split(X, np.eye(10, dtype=np.float32)[labels])

    return split(600), split(200)


TRIAL = Trial(hidden_layers=2, hidden_units=16, learning_rate=0.05, batch_size=32, l2=0.001,
             activation="relu")


def test_first_epochs_of_a_long_run_are_the_short_run(tmp_path, small_data):
    train, val = small_data
    long, _ = keras_search.train_item(TRIAL, train, val, (2, 4), (7,), *outs(tmp_path, "long"))
    short, _ = keras_search.train_item(TRIAL, train, val, (2,), (7,), *outs(tmp_path, "short"))
    assert long[7][2] == short[7][2]
    checkpoint = keras.models.load_model(tmp_path / "long" / "model_seed7_e2.keras")
    final = keras.models.load_model(tmp_path / "short" / "model_seed7_e2.keras")
    for a, b in zip(checkpoint.get_weights(), final.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        keras.models.load_model(tmp_path / "long" / "model_seed7_e4.keras").get_weights()[0],
        checkpoint.get_weights()[0])


def test_item_is_deterministic_and_readable(tmp_path, small_data):
    train, val = small_data
    a, seconds = keras_search.train_item(TRIAL, train, val, (1, 3), (3, 4), *outs(tmp_path, "a"))
    b, _ = keras_search.train_item(TRIAL, train, val, (1, 3), (3, 4), *outs(tmp_path, "b"))
    assert a == b and seconds > 0
    # the same bytes: models saved without their time of saving, no timing in metrics.json
    for name in ("metrics.json", "history.csv", "model_seed3_e1.keras", "model_seed4_e3.keras"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    item = read_item(tmp_path / "a", TRIAL, (1, 3), (3, 4))
    figures = item["seeds"][4][3]
    assert (figures["val_correct"], figures["val_loss"]) == (a[4][3]["val_correct"],
                                                             a[4][3]["val_loss"])
    assert figures["val_accuracy"] == a[4][3]["val_correct"] / len(val.X)
    assert item["diverged"] == {}
    runs = (tmp_path / "a" / "history.csv").read_text().splitlines()
    assert runs[0] == "seed,epoch,train_loss,val_loss,train_accuracy,val_accuracy"
    assert len(runs) == 1 + 2 * 3
    mean = (tmp_path / "a.csv").read_text().splitlines()
    assert mean[0] == "epoch,train_loss,val_loss,train_accuracy,val_accuracy"
    assert float(mean[3].split(",")[4]) == pytest.approx(
        (a[3][3]["val_correct"] + a[4][3]["val_correct"]) / 2 / len(val.X), abs=1e-6)
    assert all(isinstance(a[s][e]["val_correct"], int) for s in (3, 4) for e in (1, 3))
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["trial"]["batch_size"] == 32


def test_seeds_differ_in_initial_weights_and_data_order(small_data):
    """Each seed draws its own initial weights, and fit's shuffle (seeded by the same call) its
    own order: the same initial weights trained under two seeds end apart."""
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    train, _ = small_data
    spec = TRIAL.spec(32, 10)
    initial = {}
    for seed in (0, 1):
        keras_search.deterministic(seed)
        initial[seed] = keras_search.build_mlp(spec, TRIAL.l2, TRIAL.learning_rate).get_weights()
    assert not np.array_equal(initial[0][0], initial[1][0])

    def first_batch(seed):
        keras_search.deterministic(seed)
        adapter = ArrayDataAdapter(train.X, train.Y, batch_size=32, shuffle=True)
        return next(iter(adapter.get_tf_dataset()))[0].numpy()

    np.testing.assert_array_equal(first_batch(0), first_batch(0))
    assert not np.array_equal(first_batch(0), first_batch(1))


def test_steps_per_execution_changes_no_bit(small_data):
    """A speed knob, not a param: one step, 8 steps or a whole epoch per execution train the
    same weights and the same validation curves."""
    train, val = small_data
    runs = [keras_search.fit(TRIAL, train, val, 3, 5, steps_per_execution=spe)
            for spe in (1, 8, None)]  # None: the default, a whole epoch
    for h in runs[1:]:
        assert h.history == runs[0].history
        for w, w0 in zip(h.model.get_weights(), runs[0].model.get_weights(), strict=True):
            np.testing.assert_array_equal(w, w0)


def test_a_diverged_seed_records_where_and_keeps_no_model(tmp_path, small_data):
    train, val = small_data
    wild = Trial(hidden_layers=2, hidden_units=16, learning_rate=1e4, batch_size=32, l2=0.001,
             activation="relu")
    results, _ = keras_search.train_item(wild, train, val, (2, 4), (7,),
                                         *outs(tmp_path, "wild"))
    item = read_item(tmp_path / "wild", wild, (2, 4), (7,))
    assert results == {7: {"diverged": item["diverged"][7]}}
    assert item["seeds"] == {} and 1 <= item["diverged"][7]["epoch"] <= 4
    assert item["diverged"][7]["loss"] in ("nan", "inf")
    assert not list((tmp_path / "wild").glob("*.keras"))
    text = (tmp_path / "wild" / "metrics.json").read_text() + \
        (tmp_path / "wild.csv").read_text() + (tmp_path / "wild" / "history.csv").read_text()
    assert "NaN" not in text and "nan," not in text


def test_a_loss_that_explodes_while_finite_is_a_divergence(tmp_path, small_data):
    """lr 5: the loss grows by orders of magnitude but stays finite, and accuracy is at chance;
    it counts as diverged (above 100 x ln 10), like a NaN."""
    train, val = small_data
    wild = Trial(hidden_layers=2, hidden_units=16, learning_rate=5.0, batch_size=32, l2=0.001,
             activation="relu")
    results, _ = keras_search.train_item(wild, train, val, (2, 4), (7,), *outs(tmp_path, "wild"))
    diverged = results[7]["diverged"]
    loss = float(diverged["loss"])
    assert np.isfinite(loss) and loss > 100 * np.log(10), diverged


def test_history_rows_rename_keras_columns_and_drop_missing_validation():
    keras_history = {"loss": [2.0, 1.0], "accuracy": [0.3, 0.6]}
    assert keras_search.history_rows(keras_history, 2) == [
        {"epoch": 1, "train_loss": 2.0, "train_accuracy": 0.3},
        {"epoch": 2, "train_loss": 1.0, "train_accuracy": 0.6}]
    keras_history |= {"val_loss": [2.1, 1.2], "val_accuracy": [0.2, 0.5]}
    assert list(keras_search.history_rows(keras_history, 1)[0]) == list(
        keras_search.HISTORY_COLUMNS)


def test_a_seed_trains_the_same_alone_or_among_others(tmp_path, small_data):
    """The seed-0 run of a multi-seed item is the single-seed search's run, bit for bit."""
    train, val = small_data
    alone, _ = keras_search.train_item(TRIAL, train, val, (2,), (7,), *outs(tmp_path, "a"))
    among, _ = keras_search.train_item(TRIAL, train, val, (2,), (8, 7), *outs(tmp_path, "b"))
    assert alone[7] == among[7] and among[8] != among[7]
    assert (tmp_path / "a" / "model_seed7_e2.keras").read_bytes() == \
        (tmp_path / "b" / "model_seed7_e2.keras").read_bytes()


def test_the_search_regularises_the_hidden_kernels_only(small_data):
    """The model the search trains (fit, from Trial.spec): an L2 penalty of factor trial.l2 on
    each hidden kernel and none on the output's (the seed's Problem 2; the scratch MLP's
    objective has it on every kernel), so the model's penalty is l2 x the hidden kernels'
    squared sum. Three hidden layers of different widths: a penalty on the wrong layer, on the
    biases or with another factor changes the sum."""
    trial = Trial(hidden_layers=3, hidden_units=7, learning_rate=0.05, batch_size=64, l2=0.003,
                  activation="tanh")
    train, _ = small_data
    model = keras_search.fit(trial, train, None, 1, seed=0).model
    *hidden, output = model.layers
    assert len(hidden) == 3 and output.kernel_regularizer is None
    assert output.bias_regularizer is None and output.activity_regularizer is None
    for layer in hidden:
        assert layer.kernel_regularizer.get_config() == {"l2": pytest.approx(trial.l2)}
        assert layer.bias_regularizer is None
    penalty = sum(float(np.sum(np.square(layer.kernel.numpy()))) for layer in hidden)
    assert float(sum(model.losses)) == pytest.approx(trial.l2 * penalty, rel=1e-5)
    assert not trial.spec(32, 10).l2_output


@pytest.mark.parametrize("loss, diverged", [(150.0, False), (230.0, False), (231.0, True)])
def test_the_divergence_limit_is_100_times_ln_classes(tmp_path, loss, diverged):
    """For 10 classes the limit is 100 ln 10 = 230.26 (100 log10 10 = 100 would call 150
    diverged)."""
    from fmnist_mlp.keras_search.train import Checkpoints

    callback = Checkpoints(tmp_path, epochs=(5,), seed=0, classes=10)

    class Model:
        stop_training = False

    callback.set_model(Model())
    callback.on_epoch_begin(0)
    callback.on_epoch_end(0, {"loss": loss, "val_loss": 1.0})
    assert (callback.diverged is not None) is diverged
    assert callback.model.stop_training is diverged
