"""evaluate_keras: test-set figures of the best Keras configuration chosen by select, over its
seeds, from the search's own models (no retraining unless evaluate.retrain).

METRICS_JSON: test accuracy (mean over the seeds), its standard deviation and the mean test
cross-entropy; REPORT_JSON: each seed's figures, per-class accuracy (mean over the seeds) and the
configuration; CONFUSION_CSV: (actual, predicted) per test image of the first seed's model;
HISTORY_CSV: the losses of the chosen configuration (mean over the seeds) over its last 20
epochs (the seed's figure). With evaluate.retrain each seed's run is retrained on train + val
before testing.
"""

import fmnist_mlp.core.startup  # noqa: F401  (first: the numeric profile before numpy)

import csv
from pathlib import Path

import numpy as np

from fmnist_mlp.core import cli, files
from fmnist_mlp.core.data import Split, load_split
from fmnist_mlp.core.errors import DataError
from fmnist_mlp.core.params import Section, load_section
from fmnist_mlp.evaluation.metrics import classification_report, confusion_rows
from fmnist_mlp.evaluation.stats import summary
from fmnist_mlp.grid.search import read_config
from fmnist_mlp.keras_search import native_log

LAST_EPOCHS = 20  # the seed's figure: training loss over the last 20 epochs


class EvaluateConfig(Section):
    SECTION = "evaluate"
    retrain: bool


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


def main(prepared_dir: Path, best_dir: Path, metrics_json: Path, report_json: Path,
         confusion_csv: Path, history_csv: Path) -> None:
    cfg = load_section(EvaluateConfig)
    trial, epochs, seeds = read_config(best_dir / "config.json")
    native_log.capture("evaluate_keras")
    from fmnist_mlp.keras_search import models as keras_models
    from fmnist_mlp.keras_search.train import fit, log_probs

    test = load_split(prepared_dir, "test")
    if cfg.retrain:
        train, val = load_split(prepared_dir, "train"), load_split(prepared_dir, "val")
        train_val = Split(np.concatenate([train.X, val.X]), np.concatenate([train.Y, val.Y]))
    spec = trial.spec(test.X.shape[1], test.Y.shape[1])  # what each model file must hold
    reports = {}
    for seed in seeds:
        model = (fit(trial, train_val, None, epochs, seed).model if cfg.retrain
                 else keras_models.load_model(best_dir / f"model_seed{seed}.keras", spec))
        lp = log_probs(model, test.X)  # (N, C)
        reports[seed] = classification_report(lp, test.labels)
        if seed == seeds[0]:
            confusion = confusion_rows(lp, test.labels)
    accuracy = summary([r["test_accuracy"] for r in reports.values()])
    per_class = {name: float(np.mean([r["per_class_accuracy"][name] for r in reports.values()]))
                 for name in reports[seeds[0]]["per_class_accuracy"]}
    last = final_history(best_dir / "history.csv", epochs)
    with files.outputs(metrics_json, report_json, confusion_csv, history_csv):
        files.write_json(metrics_json, {
            "test_accuracy": accuracy["mean"], "accuracy_std": accuracy["std"],
            "test_loss": float(np.mean([r["test_loss"] for r in reports.values()]))})
        files.write_json(report_json, {
            "config": {**trial.as_dict(), "epochs": epochs}, "seeds": list(seeds),
            "test_accuracy": {str(s): r["test_accuracy"] for s, r in reports.items()},
            "test_loss": {str(s): r["test_loss"] for s, r in reports.items()},
            "test_accuracy_ci95": accuracy["ci95"], "per_class_accuracy": per_class,
            "retrained_on_train_val": cfg.retrain})
        files.write_csv(confusion_csv, confusion)
        files.write_csv(history_csv, last)
    cli.log("evaluate_keras", f"{trial.name}, {epochs} epochs: test accuracy "
                              f"{accuracy['mean']:.4f} +- {accuracy['std']:.4f} over seeds "
                              f"{', '.join(map(str, seeds))}")


if __name__ == "__main__":
    cli.run(main, __doc__)
