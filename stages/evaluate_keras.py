"""evaluate_keras: test-set figures of the best Keras configuration chosen by select.

Usage: python -m stages.evaluate_keras PREPARED_DIR BEST_DIR METRICS_JSON REPORT_JSON
           CONFUSION_CSV FINAL_HISTORY_CSV
METRICS_JSON: test accuracy and cross-entropy; REPORT_JSON: per-class accuracy and the
configuration; CONFUSION_CSV: (actual, predicted) per test image; FINAL_HISTORY_CSV: the chosen
run's losses over its last 20 epochs (the seed's figure). With evaluate.retrain the configuration
is retrained on train + val (seed search.seed) before testing.
"""

import csv
from pathlib import Path

import numpy as np

from fmnist_mlp import native_log, stage
from fmnist_mlp.config import EvaluateConfig, SearchConfig, load_section
from fmnist_mlp.data import Split, load_split
from fmnist_mlp.errors import DataError
from fmnist_mlp.metrics import confusion_rows, test_report
from fmnist_mlp.search import read_config

LAST_EPOCHS = 20  # the seed's figure: training loss over the last 20 epochs


def final_history(history_csv: Path, epochs: int) -> list[dict]:
    """Train and validation loss of the chosen run over its last LAST_EPOCHS epochs."""
    try:
        with history_csv.open() as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= epochs]
        return [{"epoch": int(r["epoch"]), "train_loss": float(r["train_loss"]),
                 "val_loss": float(r["val_loss"])} for r in rows[-LAST_EPOCHS:]]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{history_csv}: cannot read ({type(e).__name__}: {e}); run "
                        f"`dvc repro select`") from None


def main(prepared_dir: Path, best_dir: Path, metrics_path: Path, report_path: Path,
         confusion_csv: Path, history_path: Path) -> None:
    cfg, search = load_section(EvaluateConfig), load_section(SearchConfig)
    trial, epochs = read_config(best_dir / "config.json")
    native_log.capture("evaluate_keras")
    from fmnist_mlp import keras_models
    from fmnist_mlp.keras_search import fit, log_probs

    test = load_split(prepared_dir, "test")
    if cfg.retrain:
        train, val = load_split(prepared_dir, "train"), load_split(prepared_dir, "val")
        train_val = Split(np.concatenate([train.X, val.X]), np.concatenate([train.Y, val.Y]))
        model = fit(trial, train_val, None, epochs, search.seed,
                    search.steps_per_execution).model
    else:
        model = keras_models.load_model(best_dir / "model.keras")
    lp = log_probs(model, test.X)  # (N, C)
    last = final_history(best_dir / "history.csv", epochs)
    with stage.outputs(metrics_path, report_path, confusion_csv, history_path):
        headline = test_report(lp, test.labels, metrics_path, report_path,
                               config={**trial.as_dict(), "epochs": epochs},
                               retrained_on_train_val=cfg.retrain)
        stage.write_csv(confusion_csv, confusion_rows(lp, test.labels))
        stage.write_csv(history_path, last)
    stage.log("evaluate_keras", f"{trial.name}, {epochs} epochs: test accuracy "
                                f"{headline['test_accuracy']:.4f}")


if __name__ == "__main__":
    stage.run(main, __doc__)
