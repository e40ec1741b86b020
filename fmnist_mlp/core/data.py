"""The prepared splits every later stage reads: Split (X (N, 784) float32, Y (N, 10) one-hot) and
load_split. What writes them (the prepare stage and its params) is in prepare.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_mlp.core.errors import DataError

NUM_CLASSES = 10
PIXELS = 28 * 28  # an image's inputs
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True)
class Split:
    """One split: X (N, 784) float32 normalised images, Y (N, 10) float32 one-hot labels."""

    X: np.ndarray
    Y: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        return self.Y.argmax(axis=1)  # (N,)

    def head(self, n: int) -> Split:
        return Split(self.X[:n], self.Y[:n])


def load_split(prepared_dir: Path, name: str) -> Split:
    path = Path(prepared_dir) / f"{name}.npz"
    try:
        with np.load(path) as f:
            return Split(f["X"], f["Y"])
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{path}: cannot load prepared split ({e})") from None
