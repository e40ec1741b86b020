"""The scratch model as configured in params.yaml: its layer sizes and initial weights."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fmnist_mlp.config import ScratchConfig
from fmnist_mlp.data import Split
from fmnist_mlp.errors import DataError
from fmnist_mlp.mlp import Sizes, init_params


def layer_sizes(cfg: ScratchConfig, data: Split) -> Sizes:
    return (data.X.shape[1], *cfg.hidden, data.Y.shape[1])


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
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot load the scratch model ({type(e).__name__}: {e}); "
                        f"run `dvc repro train_scratch`") from None


def load_model(model_dir) -> tuple[np.ndarray, Sizes]:
    theta, sizes = _load(Path(model_dir) / "model.npz", "theta", "sizes")
    return theta, tuple(int(s) for s in sizes)


def load_trajectory(model_dir) -> np.ndarray:
    (trajectory,) = _load(Path(model_dir) / "trajectory.npz", "trajectory")
    return trajectory  # (T, P)
