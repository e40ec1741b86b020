"""evaluate_scratch: test-set figures of the scratch MLP (no TensorFlow).

METRICS_JSON: test accuracy and cross-entropy; REPORT_JSON: per-class accuracy; CONFUSION_CSV:
(actual, predicted) per test image, drawn by DVC as a normalised confusion matrix.
"""

import fmnist_mlp.core.startup  # noqa: F401  (first: the numeric profile before numpy)

from pathlib import Path

import numpy as np

from fmnist_mlp.core import cli, files
from fmnist_mlp.core.data import load_split
from fmnist_mlp.evaluation.metrics import confusion_rows, write_test_metrics
from fmnist_mlp.numpy_mlp.mlp import predict_log_proba
from fmnist_mlp.numpy_mlp.scratch import load_model, require_memory


def main(prepared_dir: Path, scratch_dir: Path, metrics_json: Path, report_json: Path,
         confusion_csv: Path) -> None:
    test = load_split(prepared_dir, "test")
    theta, spec = load_model(scratch_dir)
    require_memory(spec, copies=2, rows=len(test.X))
    log_probs = predict_log_proba(theta, test.X.astype(np.float64), spec)  # (N, C)
    with files.outputs(metrics_json, report_json, confusion_csv):
        headline = write_test_metrics(log_probs, test.labels, metrics_json, report_json)
        files.write_csv(confusion_csv, confusion_rows(log_probs, test.labels))
    cli.log("evaluate_scratch", f"test accuracy {headline['test_accuracy']:.4f}")


if __name__ == "__main__":
    cli.run(main, __doc__)
