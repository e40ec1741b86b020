"""evaluate: test-set figures of the scratch model and of the best Keras configuration.

Usage: python -m stages.evaluate PREPARED_DIR SCRATCH_DIR BEST_DIR METRICS_JSON PLOTS_DIR
Writes METRICS_JSON, PLOTS_DIR/confusion_{scratch,keras}.csv and PLOTS_DIR/final_history.{csv,png}.
With evaluate.retrain the best configuration is retrained on train + val before testing;
evaluate.seeds retrains it once per seed to show the spread of test accuracy.
"""

import csv
from pathlib import Path

import numpy as np

from fmnist_mlp import plotting, stage
from fmnist_mlp.config import EvaluateConfig, SearchConfig, load_section
from fmnist_mlp.data import Split, load_split
from fmnist_mlp.errors import DataError
from fmnist_mlp.metrics import classification_report, confusion_rows
from fmnist_mlp.mlp import predict_log_proba
from fmnist_mlp.scratch import load_model
from fmnist_mlp.search import AXES, Trial

LAST_EPOCHS = 20  # the seed's figure: training loss over the last 20 epochs


def keras_log_probs(model, X: np.ndarray) -> np.ndarray:
    from fmnist_mlp.keras_models import FORWARD_BATCH

    probs = model.predict(X, batch_size=FORWARD_BATCH, verbose=0)  # (N, C)
    return np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0))


def final_history(history_csv: Path, epochs: int) -> list[dict]:
    """Train and validation loss of the chosen run over its last LAST_EPOCHS epochs."""
    with history_csv.open() as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= epochs]
    return [{"epoch": int(r["epoch"]), "train_loss": float(r["train_loss"]),
             "val_loss": float(r["val_loss"])} for r in rows[-LAST_EPOCHS:]]


def main(prepared_dir: Path, scratch_dir: Path, best_dir: Path, metrics_path: Path,
         plots_dir: Path) -> None:
    cfg, search = load_section(EvaluateConfig), load_section(SearchConfig)
    from fmnist_mlp import keras_models
    from fmnist_mlp.keras_search import fit

    test = load_split(prepared_dir, "test")
    labels = test.labels  # (N,)
    chosen = stage.read_json(best_dir / "config.json")
    try:
        trial = Trial(**{axis: chosen[axis] for axis in AXES})
    except KeyError as e:
        raise DataError(f"{best_dir / 'config.json'}: no {e}; run `dvc repro select`") from None
    train, val = load_split(prepared_dir, "train"), load_split(prepared_dir, "val")
    if cfg.retrain:
        train = Split(np.concatenate([train.X, val.X]), np.concatenate([train.Y, val.Y]))

    def trained(seed: int):
        return fit(trial, train, None, chosen["epochs"], seed, search.steps_per_execution).model

    theta, sizes = load_model(scratch_dir)
    scratch_lp = predict_log_proba(theta, test.X.astype(np.float64), sizes)  # (N, C)
    model = trained(search.seed) if cfg.retrain else keras_models.load_model(
        best_dir / "model.keras")
    keras_lp = keras_log_probs(model, test.X)  # (N, C)
    spread = []
    for seed in cfg.seeds:
        spread.append(classification_report(keras_log_probs(trained(seed), test.X), labels)
                      ["test_accuracy"])
        stage.log("evaluate", f"seed {seed}: test accuracy {spread[-1]:.4f}")

    with stage.outputs(metrics_path, plots_dir / "confusion_scratch.csv",
                       plots_dir / "confusion_keras.csv", plots_dir / "final_history.csv",
                       plots_dir / "final_history.png"):
        keras_report = classification_report(keras_lp, labels)
        if spread:
            keras_report["test_accuracy_mean"] = float(np.mean(spread))
            keras_report["test_accuracy_std"] = float(np.std(spread, ddof=1 if len(spread) > 1
                                                             else 0))
            keras_report["test_accuracy_seeds"] = spread
        keras_report["config"] = chosen
        keras_report["retrained_on_train_val"] = cfg.retrain
        scratch_report = classification_report(scratch_lp, labels)
        stage.write_json(metrics_path, {"scratch": scratch_report, "keras": keras_report})
        stage.write_csv(plots_dir / "confusion_scratch.csv", confusion_rows(scratch_lp, labels))
        stage.write_csv(plots_dir / "confusion_keras.csv", confusion_rows(keras_lp, labels))
        last = final_history(best_dir / "history.csv", chosen["epochs"])
        stage.write_csv(plots_dir / "final_history.csv", last)
        plotting.history(plots_dir / "final_history.png", last,
                         [("loss (cross-entropy + L2)", ["train_loss", "val_loss"])],
                         f"Best Keras configuration, its last {len(last)} epochs\n{trial.name}")
    stage.log("evaluate", f"test accuracy: scratch {scratch_report['test_accuracy']:.4f}, "
                          f"keras {keras_report['test_accuracy']:.4f}")


if __name__ == "__main__":
    stage.run(main, __doc__)
