"""The scratch model as configured in params.yaml (section ``scratch``, read by gradcheck,
train_scratch, evaluate_scratch and landscape): its layer sizes, initial weights and model files."""

from __future__ import annotations

import typing
import zipfile
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from fmnist_mlp.core import resources
from fmnist_mlp.core.data import Split
from fmnist_mlp.core.errors import DataError
from fmnist_mlp.core.params import Int, Section
from fmnist_mlp.network.spec import MLPSpec, check_activation
from fmnist_mlp.numpy_mlp.mlp import init_params


class ScratchConfig(Section):
    """The from-scratch MLP and its SGD run (params section ``scratch``)."""

    SECTION = "scratch"
    hidden: tuple[typing.Annotated[Int, Field(gt=0)], ...] = Field(min_length=1)
    activation: str
    epochs: Int = Field(gt=0)
    batch_size: Int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    l2: float = Field(ge=0)
    init_seed: Int = Field(ge=0)
    shuffle_seed: Int = Field(ge=0)
    snapshot_every: Int = Field(ge=0)
    dtype: typing.Literal["float32", "float64"]

    @field_validator("activation")
    @classmethod
    def _known_activation(cls, name: str) -> str:
        return check_activation(name, cls.key("activation"))

    def spec(self, data: Split) -> MLPSpec:
        """The scratch network for ``data``'s input and class counts: L2 on every kernel."""
        return MLPSpec(data.X.shape[1], self.hidden, data.Y.shape[1], self.activation,
                       l2_output=True)


def require_memory(spec: MLPSpec, copies: int, rows: int) -> None:
    """ConfigError naming scratch.hidden when ``copies`` float64 parameter vectors and the
    activations of ``rows`` examples at once would not fit in this machine's memory."""
    resources.require_memory("scratch.hidden",
                             8 * (copies * spec.num_params + 2 * rows * sum(spec.sizes[1:])))


def initial_params(cfg: ScratchConfig, spec: MLPSpec) -> np.ndarray:
    return init_params(spec, np.random.default_rng(cfg.init_seed))  # (P,)


def save_model(model_dir, result, spec: MLPSpec) -> None:
    """model.npz: theta (P,) and its spec (JSON); trajectory.npz: trajectory (T, P), step (T,)
    and the same spec: each file says what network it holds."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    np.savez(model_dir / "model.npz", theta=result.theta, spec=np.array(spec.to_json()))
    np.savez(model_dir / "trajectory.npz", trajectory=result.trajectory,
             step=result.trajectory_step, spec=np.array(spec.to_json()))


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


def _spec(path: Path, raw: np.ndarray) -> MLPSpec:
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise DataError(f"{path}: no valid network spec (a {raw.dtype} array of shape "
                        f"{raw.shape}); run `dvc repro train_scratch`")
    return MLPSpec.from_json(str(raw), str(path))


def _params(path: Path, values: np.ndarray, spec: MLPSpec, what: str) -> np.ndarray:
    """``values`` (..., P) checked against the spec: one parameter vector per row."""
    if values.dtype.kind != "f" or values.ndim < 1 or values.shape[-1] != spec.num_params:
        raise DataError(f"{path}: {what} has shape {values.shape} ({values.dtype}), but a "
                        f"{spec.describe()} network needs ({spec.num_params},) floats per "
                        f"vector; run `dvc repro train_scratch`")
    return values


def load_model(model_dir) -> tuple[np.ndarray, MLPSpec]:
    """theta (P,) and the spec of model.npz, checked against each other."""
    path = Path(model_dir) / "model.npz"
    theta, raw = _load(path, "theta", "spec")
    spec = _spec(path, raw)
    if theta.ndim != 1:
        raise DataError(f"{path}: theta has shape {theta.shape}, not one vector; run "
                        f"`dvc repro train_scratch`")
    return _params(path, theta, spec, "theta"), spec


def load_trajectory(model_dir, spec: MLPSpec) -> np.ndarray:
    """trajectory (T, P) of trajectory.npz, which must hold the network ``spec`` (the model's)."""
    path = Path(model_dir) / "trajectory.npz"
    trajectory, raw = _load(path, "trajectory", "spec")
    spec.require(_spec(path, raw), str(path))
    if trajectory.ndim != 2:
        raise DataError(f"{path}: trajectory has shape {trajectory.shape}, not (T, P); run "
                        f"`dvc repro train_scratch`")
    return _params(path, trajectory, spec, "trajectory")  # (T, P)
