"""The scratch model as configured in params.yaml (section ``scratch``, read by gradcheck,
train_scratch and landscape): its layer sizes, initial weights and model files."""

from __future__ import annotations

import typing
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_mlp import stage
from fmnist_mlp.data import Split
from fmnist_mlp.errors import DataError
from fmnist_mlp.mlp import Sizes, init_params, num_params
from fmnist_mlp.params import Section, non_negative, positive, positive_list


@dataclass(frozen=True)
class ScratchConfig(Section):
    """The from-scratch MLP and its SGD run (params section ``scratch``)."""

    SECTION = "scratch"
    hidden: tuple[int, ...]
    epochs: int
    batch_size: int
    learning_rate: float
    l2: float
    init_seed: int
    shuffle_seed: int
    snapshot_every: int
    dtype: typing.Literal["float32", "float64"]

    def validate(self) -> None:
        positive_list(self, "hidden")
        positive(self, "epochs", "batch_size", "learning_rate")
        non_negative(self, "l2", "init_seed", "shuffle_seed", "snapshot_every")


def layer_sizes(cfg: ScratchConfig, data: Split) -> Sizes:
    return (data.X.shape[1], *cfg.hidden, data.Y.shape[1])


def require_memory(sizes: Sizes, copies: int, rows: int) -> None:
    """ConfigError naming scratch.hidden when ``copies`` float64 parameter vectors and the
    activations of ``rows`` examples at once would not fit in this machine's memory."""
    stage.require_memory("scratch.hidden",
                         8 * (copies * num_params(sizes) + 2 * rows * sum(sizes[1:])))


def initial_params(cfg: ScratchConfig, sizes: Sizes) -> np.ndarray:
    return init_params(sizes, np.random.default_rng(cfg.init_seed))  # (P,)


def save_model(model_dir, result, sizes: Sizes) -> None:
    """model.npz: theta (P,), sizes; trajectory.npz: trajectory (T, P), step (T,)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    np.savez(model_dir / "model.npz", theta=result.theta, sizes=np.array(sizes))
    np.savez(model_dir / "trajectory.npz", trajectory=result.trajectory,
             step=result.trajectory_step)


def _load(path: Path, *keys: str) -> list[np.ndarray]:
    """The arrays ``keys`` of an .npz; DataError naming the file if it is missing or corrupt."""
    try:
        with np.load(path) as f:
            return [f[k] for k in keys]
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run `dvc repro train_scratch`") from None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        cause = ("a damaged array header" if "allow_pickle" in str(e)  # numpy's guess is pickle
                 else f"{type(e).__name__}: {' '.join(str(e).split())}")
        raise DataError(f"{path}: not a readable scratch model ({cause}); run "
                        f"`dvc repro train_scratch`") from None


def load_model(model_dir) -> tuple[np.ndarray, Sizes]:
    """theta (P,) and the layer sizes of model.npz, checked against each other."""
    path = Path(model_dir) / "model.npz"
    theta, sizes = _load(path, "theta", "sizes")
    if sizes.ndim != 1 or len(sizes) < 2 or sizes.dtype.kind not in "iu" or sizes.min() < 1:
        raise DataError(f"{path}: sizes {sizes.tolist()} are not layer widths; run "
                        f"`dvc repro train_scratch`")
    sizes = tuple(int(s) for s in sizes)
    if theta.ndim != 1 or theta.dtype.kind != "f" or len(theta) != num_params(sizes):
        raise DataError(f"{path}: theta has shape {theta.shape} ({theta.dtype}), but sizes "
                        f"{list(sizes)} need ({num_params(sizes)},) floats; run "
                        f"`dvc repro train_scratch`")
    return theta, sizes


def load_trajectory(model_dir) -> np.ndarray:
    (trajectory,) = _load(Path(model_dir) / "trajectory.npz", "trajectory")
    return trajectory  # (T, P)
