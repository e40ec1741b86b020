"""Raw IDX -> prepared arrays: normalised float32 images (N, 784), one-hot labels (N, 10), a
stratified train/val split; the prepare stage's params (``PrepareConfig``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import Field
from sklearn.model_selection import train_test_split

from fmnist_mlp.core.data import NUM_CLASSES, Split
from fmnist_mlp.core.errors import ConfigError, DataError
from fmnist_mlp.core.params import Fraction, Int, Section
from fmnist_mlp.dataset.idx import parse_idx


class PrepareConfig(Section):
    SECTION = "prepare"
    scale: float = Field(gt=0)
    offset: float
    val_fraction: Fraction
    seed: Int = Field(ge=0)
    subset: Int | None = Field(ge=100, le=60_000)  # null: every training image


def read_raw(raw_dir: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) uint8) of ``train`` or ``t10k``."""
    arrays = []
    for kind in ("images-idx3", "labels-idx1"):
        path = Path(raw_dir) / f"{prefix}-{kind}-ubyte"
        try:
            data = path.read_bytes()
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e})") from None
        arrays.append(parse_idx(data, str(path)))
    images, labels = arrays
    if len(images) != len(labels):
        raise DataError(f"{raw_dir}/{prefix}: {len(images)} images but {len(labels)} labels")
    if labels.max() >= NUM_CLASSES:
        raise DataError(f"{raw_dir}/{prefix}: label {labels.max()} out of range 0..9")
    return images, labels


def one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]  # (N, C)


def normalise(images: np.ndarray, scale: float, offset: float) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float32)  # (N, 784)
    return flat / np.float32(scale) + np.float32(offset)


def prepare(raw_dir: Path, scale: float, offset: float, val_fraction: float, seed: int,
            subset: int | None = None) -> dict[str, Split]:
    """Normalise, one-hot encode and split stratified train/val; the test set is untouched.

    ``subset`` keeps a stratified sample of that many training images before the split (for quick
    runs and tests).
    """
    train_images, train_labels = read_raw(raw_dir, "train")
    test_images, test_labels = read_raw(raw_dir, "t10k")
    check_split_sizes(len(train_labels), subset, val_fraction)
    index = np.arange(len(train_labels))
    if subset is not None and subset < len(index):
        index, _ = train_test_split(index, train_size=subset, random_state=seed,
                                    stratify=train_labels)
        index = np.sort(index)
    train_idx, val_idx = train_test_split(index, test_size=val_fraction, random_state=seed,
                                          stratify=train_labels[index])

    def split(images, labels, idx):
        return Split(normalise(images[idx], scale, offset), one_hot(labels[idx]))

    return {
        "train": split(train_images, train_labels, train_idx),
        "val": split(train_images, train_labels, val_idx),
        "test": split(test_images, test_labels, np.arange(len(test_labels))),
    }


def check_split_sizes(n: int, subset: int | None, val_fraction: float) -> None:
    """ConfigError unless every stratified split can hold every class: the subset, what the
    subset leaves out, the train and the validation split (scikit-learn's rounding)."""
    kept = n if subset is None or subset >= n else subset
    if kept < n and n - kept < NUM_CLASSES:
        raise ConfigError(f"prepare.subset: expected at most {n - NUM_CLASSES} (a stratified "
                          f"sample must leave every class out at least once) or null, got "
                          f"{subset}")
    n_val = math.ceil(val_fraction * kept)
    for key, size in (("val", n_val), ("train", kept - n_val)):
        if size < NUM_CLASSES:
            raise ConfigError(f"prepare.val_fraction: {val_fraction} of {kept} images leaves "
                              f"{size} for the {key} split, fewer than the {NUM_CLASSES} classes")


def save_splits(splits: dict[str, Split], out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, s in splits.items():
        np.savez(out_dir / f"{name}.npz", X=s.X, Y=s.Y)
