"""The search grid and one item of it: what defines a `search@` matrix item, read by the items,
select, evaluate_keras and the engine. Listed by those stages alone: an edit here retrains every
item but reruns no numpy stage, so what only the engine runs stays in the engine. The selection
and its statistics live in fmnist_mlp/selection and fmnist_mlp/evaluation: editing those
retrains nothing.

An *item* is one DVC matrix item (one set of axis values, a ``Trial``) trained once per seed for
max(epochs); a *configuration* is an item at one listed epoch (the seed's grid: 12 items, 24
configurations). No TensorFlow here: the grid is tested without training anything.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from fmnist_mlp.core.data import NUM_CLASSES, PIXELS
from fmnist_mlp.core.errors import ConfigError, DataError
from fmnist_mlp.core.files import read_json, write_json
from fmnist_mlp.core.params import Int, Number, Section
from fmnist_mlp.core.resources import gib
from fmnist_mlp.network.spec import MLPSpec, check_activation

FORWARD_BATCH = 4096  # batch of forward-only passes (validation, prediction): speed only
CHECKPOINT_EXTRA = 32 * 2**10  # bytes of a .keras checkpoint besides its weights (18-32 KiB)


class SearchConfig(Section):
    """The Keras grid (params section ``search``): six axes (search.Trial's fields, the DVC
    matrix), epochs as checkpoints, and the seeds every configuration is trained with (inside
    each item). An axis keeps its values as written, as DVC names the items: a strict ``int``
    (40.0 is refused) or a ``Number`` (0 stays an int)."""

    SECTION = "search"
    hidden_layers: tuple[Annotated[int, Field(gt=0)], ...] = Field(min_length=1)
    hidden_units: tuple[Annotated[int, Field(gt=0)], ...] = Field(min_length=1)
    learning_rate: tuple[Annotated[Number, Field(gt=0)], ...] = Field(min_length=1)
    batch_size: tuple[Annotated[int, Field(gt=0)], ...] = Field(min_length=1)
    l2: tuple[Annotated[Number, Field(ge=0)], ...] = Field(min_length=1)
    activation: tuple[str, ...] = Field(min_length=1)
    epochs: tuple[Annotated[Int, Field(gt=0)], ...] = Field(min_length=1)
    seeds: tuple[Int, ...]

    @field_validator("activation")
    @classmethod
    def _known_activations(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            check_activation(name, cls.key("activation"))
        return names

    @field_validator("hidden_layers", "hidden_units", "learning_rate", "batch_size", "l2",
                     "activation", "epochs")
    @classmethod
    def _distinct(cls, values: tuple) -> tuple:
        if len(set(values)) < len(values):
            raise PydanticCustomError("distinct", "expected distinct values")
        return values

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        if not seeds or min(seeds) < 0 or len(set(seeds)) < len(seeds):
            raise PydanticCustomError("seeds", "expected a non-empty list of distinct seeds >= 0")
        return seeds


@dataclass(frozen=True)
class Trial:
    """One matrix item: the six axes. Its fields are the DVC matrix's axes, the search stage's
    flags (DVC expands ``${item}`` to ``--hidden_layers 3 ... --activation relu``) and the keys of
    its metrics.json; ``name`` is its directory (tests check dvc.yaml against all of them).
    Numbers are kept as params.yaml writes them, as DVC renders them."""

    hidden_layers: int
    hidden_units: int
    learning_rate: float
    batch_size: int
    l2: float
    activation: str

    @property
    def name(self) -> str:
        """The item's directory name; dvc.yaml's ``outs`` path spells the same template."""
        return (f"layers{self.hidden_layers}-units{self.hidden_units}-lr{self.learning_rate}"
                f"-batch{self.batch_size}-l2_{self.l2}-{self.activation}")

    def spec(self, n_in: int, n_out: int) -> MLPSpec:
        """The item's network: L2 on the hidden kernels only, as the seed's Keras models."""
        return MLPSpec(n_in, (self.hidden_units,) * self.hidden_layers, n_out, self.activation,
                       l2_output=False)

    def memory(self, n_in: int, n_out: int) -> int:
        """Bytes (float32) that training this item needs at least: its weights with gradients,
        checkpoints and optimiser state, and the activations of a forward pass of FORWARD_BATCH
        examples."""
        spec = self.spec(n_in, n_out)
        return 4 * (8 * spec.num_params + 3 * FORWARD_BATCH * sum(spec.sizes[1:]))

    def as_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """One required flag per field, as DVC writes ``${item}``: --hidden_layers ... ."""
        types = {"int": int, "float": number, "str": str}
        for f in fields(Trial):
            parser.add_argument(f"--{f.name}", dest=f.name, required=True, type=types[f.type])


AXES = tuple(f.name for f in fields(Trial))


def number(text: str) -> int | float:
    """A number as DVC wrote it on the command line: ``0`` stays an int, ``0.0`` a float."""
    return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)


def expand_grid(cfg: SearchConfig) -> list[Trial]:
    """Every combination of the axes, in params.yaml's order."""
    return [Trial(*values) for values in itertools.product(*(getattr(cfg, a) for a in AXES))]


def check_disk(cfg: SearchConfig, trials: list[Trial], outputs: Path,
               cache: Path | None = None) -> None:
    """ConfigError, before any training, when training ``trials`` needs more disk than is free:
    a checkpoint per seed and listed epoch of each (float32 weights and CHECKPOINT_EXTRA), once
    where the outputs go and once in DVC's ``cache`` (twice on one disk; no ``cache``: the
    outputs' disk)."""
    copy = len(cfg.seeds) * len(cfg.epochs) * sum(
        4 * t.spec(PIXELS, NUM_CLASSES).num_params + CHECKPOINT_EXTRA for t in trials)
    disks: dict[int, list] = {}
    for place in (outputs, cache or outputs):
        where = next(p for p in (place, *place.absolute().parents) if p.is_dir())
        disks.setdefault(where.stat().st_dev, [where, 0])[1] += copy
    for where, need in disks.values():
        if need > (free := shutil.disk_usage(where).free):
            raise ConfigError(f"search: {len(trials)} item(s) to train x {len(cfg.seeds)} "
                              f"seed(s) x {len(cfg.epochs)} epoch(s) of checkpoints need about "
                              f"{gib(need)} of disk, {gib(free)} free at {where}; fewer items, "
                              f"search.seeds or search.epochs")


def checkpoint_name(seed: int, epoch: int | str) -> str:
    """The file of seed ``seed``'s model after ``epoch`` epochs in an item's directory."""
    return f"model_seed{seed}_e{epoch}.keras"


def write_item_metrics(path: Path, trial: Trial, val_examples: int,
                       seeds: dict[int, dict]) -> None:
    """metrics.json of one item: its axes, the size of the validation split and, per seed, at
    each listed epoch the count of correct validation predictions (``val_correct``, exact) and
    the validation loss at full precision, or where training diverged
    ({"diverged": {"epoch": e, "loss": "nan", ...}}). select computes every statistic from these
    exact figures; only what is shown is rounded."""
    runs = {str(seed): result if "diverged" in result else
            {"epochs": {str(e): m for e, m in sorted(result.items())}}
            for seed, result in seeds.items()}
    write_json(path, {"trial": asdict(trial), "val_examples": val_examples, "seeds": runs},
               exact=True)


def read_config(path: Path) -> tuple[Trial, int, tuple[int, ...]]:
    """The configuration select chose (its config.json): the trial, its epochs and its seeds."""
    chosen = read_json(path)
    try:
        return (Trial(**{axis: chosen[axis] for axis in AXES}), int(chosen["epochs"]),
                tuple(int(s) for s in chosen["seeds"]))
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: malformed configuration ({type(e).__name__}: {e}); run "
                        f"`dvc repro select`") from None


def divergence(trial: Trial, diverged: dict[int, dict]) -> str:
    """``name (seed 1: loss nan at epoch 3)`` of an item with diverged seeds."""
    runs = "; ".join(
        f"seed {seed}: " + ", ".join(f"{k} {v}" for k, v in d.items() if k != "epoch")
        + f" at epoch {d['epoch']}" for seed, d in sorted(diverged.items()))
    return f"{trial.name} ({runs})"
