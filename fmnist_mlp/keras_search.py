"""Training one search item in Keras: its configuration once per seed, each run for max(epochs),
checkpointing at every listed epoch.

The seeds run one after the other in one process (TensorFlow starts once per item). Training
them as independent branches of one model was measured once, by hand, before choosing: branch 0
came out bit-identical to the single run, but an epoch of 3 branches took 3.1x one model's on
this CPU-bound MLP (2.9x with 2 inter-op threads), no faster than running the seeds in turn.
bench/search.py measures the seeds in turn against a single seed."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from fmnist_mlp.data import Split
from fmnist_mlp.keras_models import FORWARD_BATCH, build_mlp, deterministic, keras, save_model
from fmnist_mlp.search import Trial, checkpoint_name, write_item_metrics
from fmnist_mlp.stage import stable, write_csv

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")


class Checkpoints(keras.callbacks.Callback):
    """Saves the model at each listed epoch (1-based), times the training epochs (the seconds go
    to timings/, never into an output) and stops at the first epoch with a non-finite loss,
    noting it in ``diverged``."""

    def __init__(self, out_dir: Path, epochs: tuple[int, ...], seed: int, progress=None):
        super().__init__()
        self.out_dir, self.epochs, self.seed = Path(out_dir), set(epochs), seed
        self.progress = progress
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
            save_model(self.model, self.out_dir / checkpoint_name(self.seed, epoch + 1))
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix(seed=self.seed, val_acc=f"{logs.get('val_accuracy', 0):.4f}")


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


def mean_rows(runs: list[list[dict]]) -> list[dict]:
    """Per-epoch mean over runs of equal length (each a list of rows by epoch)."""
    return [{"epoch": i + 1, **{c: float(np.mean([run[i][c] for run in runs]))
                                for c in HISTORY_COLUMNS[1:]}} for i in range(len(runs[0]))]


def train_item(trial: Trial, train: Split, val: Split, epochs: tuple[int, ...],
               seeds: tuple[int, ...], steps_per_execution: int, out_dir: Path,
               history_csv: Path) -> tuple[dict, float]:
    """Train the configuration once per seed for max(epochs); write out_dir/metrics.json,
    out_dir/model_seed{S}_e{E}.keras, each run's curves to out_dir/history.csv (a ``seed``
    column) and their mean over the seeds that did not diverge to ``history_csv``. Returns, per
    seed, the validation figures at each listed epoch or {"diverged": {"epoch", "loss", ...}}
    (then that seed keeps no model and its curves stop before the divergence), and the training
    seconds."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, runs, seconds = {}, {}, 0.0
    with tqdm(total=len(seeds) * max(epochs), desc=trial.name, unit="epoch", leave=False,
              mininterval=1.0) as progress:
        for seed in seeds:
            checkpoints = Checkpoints(out_dir, epochs, seed, progress)
            h = fit(trial, train, val, max(epochs), seed, steps_per_execution,
                    [checkpoints]).history
            seconds += checkpoints.train_seconds
            runs[seed] = history_rows(h, len(h["loss"]) - (checkpoints.diverged is not None))
            if checkpoints.diverged:
                for model in out_dir.glob(checkpoint_name(seed, "*")):
                    model.unlink()
                results[seed] = {"diverged": checkpoints.diverged}
            else:
                results[seed] = {e: {"val_accuracy": runs[seed][e - 1]["val_accuracy"],
                                     "val_loss": runs[seed][e - 1]["val_loss"]} for e in epochs}
    write_csv(out_dir / "history.csv", [{"seed": seed, **row} for seed, rows in runs.items()
                                        for row in rows], ("seed", *HISTORY_COLUMNS))
    finished = [runs[seed] for seed in seeds if "diverged" not in results[seed]]
    write_csv(history_csv, mean_rows(finished) if finished else [], HISTORY_COLUMNS)
    write_item_metrics(out_dir / "metrics.json", trial, results)
    return stable(results), seconds
