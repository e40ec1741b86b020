"""Classification metrics from predicted log-probabilities, and the chance level an accuracy is
judged against: what the evaluations, train_scratch and select compute (no search item lists
this: an edit retrains nothing)."""

from __future__ import annotations

import numpy as np

from fmnist_mlp.core.data import CLASS_NAMES
from fmnist_mlp.core.files import write_json


def classification_report(log_probs: np.ndarray, labels: np.ndarray) -> dict:
    """Cross-entropy (no L2 term), accuracy and per-class accuracy (recall) of (N, C) log-probs."""
    predicted = log_probs.argmax(axis=1)  # (N,)
    correct = predicted == labels  # (N,)
    per_class = {name: float(correct[labels == c].mean()) for c, name in enumerate(CLASS_NAMES)}
    return {
        "test_loss": float(-log_probs[np.arange(len(labels)), labels].mean()),
        "test_accuracy": float(correct.mean()),
        "per_class_accuracy": per_class,
    }


def write_test_metrics(log_probs: np.ndarray, labels: np.ndarray, metrics_path, report_path,
                **details) -> dict:
    """Write the headline (test accuracy and loss) to ``metrics_path`` and the per-class
    accuracy with ``details`` to ``report_path``; returns the headline."""
    report = classification_report(log_probs, labels)
    per_class = report.pop("per_class_accuracy")
    write_json(metrics_path, report)
    write_json(report_path, {**report, "per_class_accuracy": per_class, **details})
    return report


def no_better_than_chance(accuracy: float, n: int, classes: int) -> bool:
    """Whether an accuracy on n examples is within three standard errors of guessing 1/classes."""
    p = 1.0 / classes
    return accuracy <= p + 3.0 * np.sqrt(p * (1.0 - p) / n)


def confusion_rows(log_probs: np.ndarray, labels: np.ndarray) -> list[dict]:
    """One row per example (actual, predicted class names): DVC's ``confusion`` plot input."""
    predicted = log_probs.argmax(axis=1)  # (N,)
    return [{"actual": CLASS_NAMES[a], "predicted": CLASS_NAMES[p]}
            for a, p in zip(labels, predicted)]
