"""Minibatch SGD over a flat parameter vector, recording the weight trajectory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from fmnist_mlp.core.errors import DivergenceError
from fmnist_mlp.network.spec import MLPSpec
from fmnist_mlp.numpy_mlp.mlp import evaluate, loss_and_grad


@dataclass
class History:
    """Per-epoch metrics; the loss is the cross-entropy without the L2 term."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def rows(self) -> list[dict]:
        keys = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")
        return [dict(zip(keys, values)) for values in zip(*(getattr(self, k) for k in keys))]


@dataclass
class SGDResult:
    theta: np.ndarray  # (P,) final parameters
    trajectory: np.ndarray  # (T, P): initial weights, then snapshots
    trajectory_step: np.ndarray  # (T,) optimiser step of each snapshot
    history: History


def sgd(theta: np.ndarray, X: np.ndarray, Y: np.ndarray, spec: MLPSpec, *, epochs: int,
        batch_size: int, learning_rate: float, l2: float, rng: np.random.Generator,
        val: tuple[np.ndarray, np.ndarray] | None = None, snapshot_every: int = 0,
        progress: bool = True) -> SGDResult:
    """Plain minibatch SGD, reshuffling with ``rng`` every epoch.

    The arithmetic is in X's dtype (float32 halves the memory traffic; the trajectory is returned
    in float64). The trajectory holds theta before training, after every epoch and, if
    ``snapshot_every`` > 0, after every ``snapshot_every`` steps as well. Raises DivergenceError on
    a non-finite loss.
    """
    theta = np.array(theta, dtype=X.dtype)
    Y = Y.astype(X.dtype, copy=False)
    lr = X.dtype.type(learning_rate)
    n = len(X)
    snapshots, steps = [theta.copy()], [0]
    history = History()
    step = 0
    bar = tqdm(range(1, epochs + 1), desc="sgd", unit="epoch", disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        order = rng.permutation(n)  # (N,)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported instead
            for first in range(0, n, batch_size):
                batch = order[first:first + batch_size]  # (B,)
                loss, grad = loss_and_grad(theta, X[batch], Y[batch], spec, l2)
                _check_finite(loss, epoch, step + 1, learning_rate)
                theta -= lr * grad
                step += 1
                if snapshot_every and step % snapshot_every == 0:
                    snapshots.append(theta.copy())
                    steps.append(step)
            history.seconds.append(time.perf_counter() - start)
            train_loss, train_acc = evaluate(theta, X, Y, spec)
            _check_finite(train_loss, epoch, step, learning_rate)  # the last step's update
        if steps[-1] != step:
            snapshots.append(theta.copy())
            steps.append(step)
        history.epoch.append(epoch)
        history.train_loss.append(train_loss)
        history.train_accuracy.append(train_acc)
        if val is not None:
            val_loss, val_acc = evaluate(theta, val[0].astype(X.dtype, copy=False), val[1], spec)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
            bar.set_postfix(train_loss=f"{train_loss:.4f}", val_acc=f"{val_acc:.4f}")
    return SGDResult(theta.astype(np.float64), np.stack(snapshots).astype(np.float64),
                     np.array(steps), history)


def _check_finite(loss: float, epoch: int, step: int, learning_rate: float) -> None:
    if not np.isfinite(loss):
        raise DivergenceError(f"SGD diverged: loss {loss} at epoch {epoch}, step {step} "
                              f"(learning_rate={learning_rate}); lower the learning rate")
