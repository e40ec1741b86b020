"""Test-set figures (fmnist_mlp/evaluation/metrics.py): the accuracy, the loss, each class's
accuracy (its recall) and the chance level, three binomial standard errors above 1 / classes;
and the history evaluate_keras reports beside them (the chosen epochs' last 20)."""

from pathlib import Path

import numpy as np
import pytest

from fmnist_mlp.core.data import CLASS_NAMES
from fmnist_mlp.evaluation.metrics import classification_report, no_better_than_chance


def test_per_class_accuracy_is_recall():
    """Class 0: 3 examples, 2 predicted right (recall 2/3); 2 other examples predicted 0
    (precision would be 2/4)."""
    labels = np.array([0, 0, 0, 1, 2] + list(range(3, 10)))  # (12,)
    predicted = np.array([0, 0, 5, 0, 0] + list(range(3, 10)))  # (12,)
    log_probs = np.log(np.full((12, 10), 0.01))
    log_probs[np.arange(12), predicted] = np.log(0.91)
    report = classification_report(log_probs, labels)
    assert report["per_class_accuracy"][CLASS_NAMES[0]] == pytest.approx(2 / 3)
    assert report["per_class_accuracy"][CLASS_NAMES[1]] == 0.0
    assert report["test_accuracy"] == pytest.approx(9 / 12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # empty classes, a still trajectory
def test_the_test_loss_is_the_mean_negative_log_probability_of_the_label():
    log_probs = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))  # (2, 3)
    report = classification_report(log_probs, np.array([0, 2]))
    assert report["test_loss"] == pytest.approx((np.log(2) + np.log(10)) / 2)
    assert report["test_accuracy"] == 0.5


@pytest.mark.parametrize("accuracy, chance", [(0.1284, True), (0.1290, False)])
def test_the_chance_threshold_is_three_binomial_standard_errors(accuracy, chance):
    """1 000 examples, 10 classes: 0.1 + 3 sqrt(0.1 x 0.9 / 1000) = 0.12846; with sqrt(p/n)
    (0.13) 0.1290 would be at chance too."""
    assert no_better_than_chance(accuracy, 1000, 10) == chance


def test_an_accuracy_exactly_at_the_chance_threshold_is_chance():
    limit = 0.1 + 3.0 * np.sqrt(0.1 * 0.9 / 1000)
    assert no_better_than_chance(limit, 1000, 10)
    assert not no_better_than_chance(np.nextafter(limit, 1), 1000, 10)


def test_evaluate_keras_draws_the_chosen_epochs_last_20_not_the_runs_last(tmp_path):
    """The winner chosen at 30 epochs of a run checkpointed up to 40: the final history is
    epochs 11 to 30 of its curves (the run's last 20, 21 to 40, would be another model's).
    Run in its own process: a stage script sets the numeric profile and its signals on import."""
    import json
    import subprocess
    import sys

    history = tmp_path / "history.csv"
    history.write_text("epoch,train_loss,val_loss\n" + "".join(
        f"{e},{e / 100},{e / 1000}\n" for e in range(1, 41)))
    code = ("import json, sys; from pathlib import Path; "
            "from stages.evaluate_keras import final_history; "
            "print(json.dumps(final_history(Path(sys.argv[1]), 30)))")
    out = subprocess.run([sys.executable, "-c", code, str(history)], check=True, text=True,
                         capture_output=True, cwd=Path(__file__).resolve().parents[1]).stdout
    rows = json.loads(out)
    assert [r["epoch"] for r in rows] == list(range(11, 31))
    assert rows[0] == {"epoch": 11, "train_loss": 0.11, "val_loss": 0.011}
