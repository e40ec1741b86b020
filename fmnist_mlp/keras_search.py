"""Training one search item in Keras: once for max(epochs), checkpointing at every listed epoch."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from fmnist_mlp.data import Split
from fmnist_mlp.keras_models import FORWARD_BATCH, build_mlp, deterministic, keras, save_model
from fmnist_mlp.search import Trial, write_item_metrics
from fmnist_mlp.stage import stable, write_csv

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")


class Checkpoints(keras.callbacks.Callback):
    """Saves the model at each listed epoch (1-based), times the training epochs (the seconds go
    to timings/, never into an output) and stops at the first epoch with a non-finite loss,
    noting it in ``diverged``."""

    def __init__(self, out_dir: Path, epochs: tuple[int, ...]):
        super().__init__()
        self.out_dir, self.epochs = Path(out_dir), set(epochs)
        self.train_seconds = 0.0
        self.diverged: dict | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self.start
        losses = {k: float(v) for k, v in (logs or {}).items() if k.endswith("loss")}
        if not all(map(math.isfinite, losses.values())):
            self.diverged = {"epoch": epoch + 1, **{k: str(v) for k, v in losses.items()}}
            self.model.stop_training = True
        elif epoch + 1 in self.epochs:
            save_model(self.model, self.out_dir / f"model_e{epoch + 1}.keras")


def log_probs(model: keras.Model, X: np.ndarray) -> np.ndarray:
    """Log-probabilities (N, C) of a trained model, in float64 (clipped away from log 0)."""
    probs = model.predict(X, batch_size=FORWARD_BATCH, verbose=0)  # (N, C)
    return np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0))


def history_rows(history: dict, epochs: int) -> list[dict]:
    """The first ``epochs`` rows of Keras' History.history under HISTORY_COLUMNS' names (no
    validation columns when it has none)."""
    keras_name = {"train_loss": "loss", "val_loss": "val_loss", "train_accuracy": "accuracy",
                  "val_accuracy": "val_accuracy"}
    columns = [c for c in HISTORY_COLUMNS[1:] if keras_name[c] in history]
    return [{"epoch": i + 1, **{c: history[keras_name[c]][i] for c in columns}}
            for i in range(epochs)]


def fit(trial: Trial, train: Split, val: Split | None, epochs: int, seed: int,
        steps_per_execution: int, callbacks=()) -> keras.callbacks.History:
    """The seed's model for ``trial``, trained on ``train`` and, unless ``val`` is None, validated
    on it each epoch (in batches of FORWARD_BATCH: a forward pass needs no small batches, and at
    the training batch size validation would cost about as much as training)."""
    deterministic(seed)
    model = build_mlp(trial.sizes(train.X.shape[1], train.Y.shape[1]), trial.l2,
                      trial.learning_rate, steps_per_execution)
    validation = {} if val is None else {"validation_data": (val.X, val.Y),
                                         "validation_batch_size": FORWARD_BATCH}
    return model.fit(train.X, train.Y, batch_size=trial.batch_size, epochs=epochs, shuffle=True,
                     verbose=0, callbacks=list(callbacks), **validation)


def train_item(trial: Trial, train: Split, val: Split, epochs: tuple[int, ...], seed: int,
               steps_per_execution: int, out_dir: Path, history_csv: Path) -> tuple[dict, float]:
    """Train once for max(epochs); write out_dir/metrics.json, out_dir/model_e{E}.keras and the
    per-epoch curves to ``history_csv``. Returns the validation figures at each listed epoch, or
    {"diverged": {"epoch", "loss", ...}} if training diverged (then metrics.json records the
    same, the curves the epochs before it, and no model is kept), and the training seconds."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = Checkpoints(out_dir, epochs)
    h = fit(trial, train, val, max(epochs), seed, steps_per_execution, [checkpoints]).history
    rows = history_rows(h, len(h["loss"]) - (checkpoints.diverged is not None))
    write_csv(history_csv, rows, HISTORY_COLUMNS)
    if checkpoints.diverged:
        for model in out_dir.glob("model_e*.keras"):
            model.unlink()
        write_item_metrics(out_dir / "metrics.json", trial, diverged=checkpoints.diverged)
        return {"diverged": checkpoints.diverged}, checkpoints.train_seconds
    by_epoch = {e: {"val_accuracy": rows[e - 1]["val_accuracy"],
                    "val_loss": rows[e - 1]["val_loss"]} for e in epochs}
    write_item_metrics(out_dir / "metrics.json", trial, by_epoch)
    return stable(by_epoch), checkpoints.train_seconds
