"""Training one search item in Keras: its configuration once per seed, each run for max(epochs),
checkpointing at every listed epoch.

Speed knobs are not params (they change no bit): each fit runs a whole epoch per execution
(``steps_per_execution``: bench/search.py measures it against 50 steps, tests/test_keras_search.py
checks the weights are identical), and validation runs in batches of FORWARD_BATCH.

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

from fmnist_mlp.core.data import Split
from fmnist_mlp.core.files import write_csv
from fmnist_mlp.grid.search import FORWARD_BATCH, Trial, checkpoint_name, write_item_metrics
from fmnist_mlp.keras_search.models import build_mlp, deterministic, keras, save_model

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")
EXPLODED = 100.0  # a training loss this many times chance level's, ln(classes), has diverged


class Checkpoints(keras.callbacks.Callback):
    """Saves the model at each listed epoch (1-based), times the training epochs (the seconds go
    to timings/, never into an output) and stops at the first epoch whose loss is not finite or
    has exploded (above EXPLODED x ln(classes), orders of magnitude above where training starts,
    even while still finite), noting it in ``diverged``."""

    def __init__(self, out_dir: Path, epochs: tuple[int, ...], seed: int, classes: int,
                 progress=None):
        super().__init__()
        self.out_dir, self.epochs, self.seed = Path(out_dir), set(epochs), seed
        self.limit = EXPLODED * math.log(classes)
        self.progress = progress
        self.train_seconds = 0.0
        self.diverged: dict | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self.start
        losses = {k: float(v) for k, v in (logs or {}).items() if k.endswith("loss")}
        if not all(math.isfinite(v) and v <= self.limit for v in losses.values()):
            self.diverged = {"epoch": epoch + 1, **{k: f"{v:.6g}" for k, v in losses.items()}}
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
        callbacks=(), steps_per_execution: int | None = None) -> keras.callbacks.History:
    """The seed's model for ``trial``, trained on ``train`` and, unless ``val`` is None, validated
    on it each epoch (in batches of FORWARD_BATCH: a forward pass needs no small batches, and at
    the training batch size validation would cost about as much as training). One execution
    runs a whole epoch unless ``steps_per_execution`` says otherwise (benches and tests): the
    fastest, and the same bits as one step at a time."""
    deterministic(seed)
    steps = steps_per_execution or math.ceil(len(train.X) / trial.batch_size)
    model = build_mlp(trial.spec(train.X.shape[1], train.Y.shape[1]), trial.l2,
                      trial.learning_rate, steps)
    validation = {} if val is None else {"validation_data": (val.X, val.Y),
                                         "validation_batch_size": FORWARD_BATCH}
    return model.fit(train.X, train.Y, batch_size=trial.batch_size, epochs=epochs, shuffle=True,
                     verbose=0, callbacks=list(callbacks), **validation)


def mean_rows(runs: list[list[dict]]) -> list[dict]:
    """Per-epoch mean over runs of equal length (each a list of rows by epoch)."""
    return [{"epoch": i + 1, **{c: float(np.mean([run[i][c] for run in runs]))
                                for c in HISTORY_COLUMNS[1:]}} for i in range(len(runs[0]))]


def correct_count(accuracy: float, examples: int) -> int:
    """The number of correct predictions behind Keras' float32 accuracy on ``examples``: Keras
    sums 0/1 matches exactly and divides once, so the count is the nearest integer."""
    count = round(accuracy * examples)
    if abs(count / examples - accuracy) > 1e-6:
        raise ValueError(f"accuracy {accuracy} is no count out of {examples}")
    return count


def train_item(trial: Trial, train: Split, val: Split, epochs: tuple[int, ...],
               seeds: tuple[int, ...], out_dir: Path, history_csv: Path,
               steps_per_execution: int | None = None) -> tuple[dict, float]:
    """Train the configuration once per seed for max(epochs); write out_dir/metrics.json,
    out_dir/model_seed{S}_e{E}.keras, each run's curves to out_dir/history.csv (a ``seed``
    column) and their mean over the seeds that did not diverge to ``history_csv``. Returns, per
    seed, the exact validation figures at each listed epoch ({"val_correct", "val_loss"}) or
    {"diverged": {"epoch", "loss", ...}} (then that seed keeps no model and its curves stop
    before the divergence), and the training seconds."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, runs, seconds = {}, {}, 0.0
    with tqdm(total=len(seeds) * max(epochs), desc=trial.name, unit="epoch", leave=False,
              mininterval=1.0) as progress:
        for seed in seeds:
            checkpoints = Checkpoints(out_dir, epochs, seed, train.Y.shape[1], progress)
            h = fit(trial, train, val, max(epochs), seed, [checkpoints],
                    steps_per_execution).history
            seconds += checkpoints.train_seconds
            runs[seed] = history_rows(h, len(h["loss"]) - (checkpoints.diverged is not None))
            if checkpoints.diverged:
                for model in out_dir.glob(checkpoint_name(seed, "*")):
                    model.unlink()
                results[seed] = {"diverged": checkpoints.diverged}
            else:
                results[seed] = {e: {"val_correct": correct_count(h["val_accuracy"][e - 1],
                                                                  len(val.X)),
                                     "val_loss": float(h["val_loss"][e - 1])} for e in epochs}
    write_csv(out_dir / "history.csv", [{"seed": seed, **row} for seed, rows in runs.items()
                                        for row in rows], ("seed", *HISTORY_COLUMNS))
    finished = [runs[seed] for seed in seeds if "diverged" not in results[seed]]
    write_csv(history_csv, mean_rows(finished) if finished else [], HISTORY_COLUMNS)
    write_item_metrics(out_dir / "metrics.json", trial, len(val.X), results)
    return results, seconds
