"""The hyper-parameter grid, its items' names, and the selection of the best configuration.

No TensorFlow here: the search logic is tested without training anything. An *item* is one DVC
matrix item (one set of axis values) trained once for max(epochs); a *configuration* is an item at
one listed epoch (the seed's grid: 12 items, 24 configurations).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from fmnist_mlp.config import SearchConfig
from fmnist_mlp.errors import DataError
from fmnist_mlp.stage import read_json, write_json


@dataclass(frozen=True)
class Trial:
    """One matrix item: the five axes. Its fields are the DVC matrix's axes, the search stage's
    flags and the keys of its metrics.json; ``name`` is its directory (tests check dvc.yaml
    against all of them). Numbers are kept as params.yaml writes them, as DVC renders them."""

    hidden_layers: int
    hidden_units: int
    learning_rate: float
    batch_size: int
    l2: float

    @property
    def name(self) -> str:
        """The item's directory name; dvc.yaml's ``outs`` path spells the same template."""
        return (f"layers{self.hidden_layers}-units{self.hidden_units}-lr{self.learning_rate}"
                f"-batch{self.batch_size}-l2_{self.l2}")

    def as_dict(self) -> dict:
        return asdict(self)

    def sizes(self, n_in: int, n_out: int) -> tuple[int, ...]:
        return (n_in, *[self.hidden_units] * self.hidden_layers, n_out)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """One required flag per field: --hidden-layers ... --l2."""
        for f in fields(Trial):
            parser.add_argument(flag(f.name), dest=f.name, required=True,
                                type=int if f.type == "int" else number)


AXES = tuple(f.name for f in fields(Trial))
LABELS = {"hidden_layers": "layers {}", "hidden_units": "units {}", "learning_rate": "lr {}",
          "batch_size": "batch {}", "l2": "l2 {}", "epochs": "epochs {}"}  # a configuration's


def varying(cfg: SearchConfig) -> tuple[str, ...]:
    """The axes (and "epochs") with more than one value in the grid: what tells configurations
    apart."""
    return tuple(a for a in LABELS if len(getattr(cfg, a)) > 1)


def label(config: dict, keys: tuple[str, ...]) -> str:
    """``layers 3, batch 128, epochs 40``: the configuration's values of ``keys``."""
    return ", ".join(LABELS[k].format(config[k]) for k in keys) or "the only configuration"


def flag(axis: str) -> str:
    return "--" + axis.replace("_", "-")


def number(text: str) -> int | float:
    """A number as DVC wrote it on the command line: ``0`` stays an int, ``0.0`` a float."""
    return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)


def expand_grid(cfg: SearchConfig) -> list[Trial]:
    """Every combination of the axes, in params.yaml's order."""
    return [Trial(*values) for values in itertools.product(*(getattr(cfg, a) for a in AXES))]


def write_item_metrics(path: Path, trial: Trial, by_epoch: dict[int, dict] | None = None,
                       diverged: dict | None = None) -> None:
    """metrics.json of one item: its axes; val_accuracy and val_loss at each listed epoch, or
    where training diverged ({"epoch": e, "loss": "nan", ...})."""
    result = {"diverged": diverged} if diverged else \
        {"epochs": {str(e): m for e, m in sorted(by_epoch.items())}}
    write_json(path, {"trial": asdict(trial), **result})


def read_item(item_dir: Path, trial: Trial, epochs: tuple[int, ...]) -> dict:
    """The item's metrics.json, checked against the trial and the listed epochs."""
    path = Path(item_dir) / "metrics.json"
    try:
        item = json.loads(path.read_text())
        recorded = Trial(**item["trial"])
        diverged = item.get("diverged")
        if diverged:
            int(diverged["epoch"])
        figures = {} if diverged else {int(e): item["epochs"][str(e)] for e in epochs}
        for m in figures.values():
            float(m["val_accuracy"]), float(m["val_loss"])
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run `dvc repro search`") from None
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: malformed item metrics ({type(e).__name__}: {e}); expected "
                        f"trial, and val_accuracy, val_loss at epochs "
                        f"{list(epochs)}") from None
    if recorded != trial:
        raise DataError(f"{path}: records {recorded}, expected {trial}")
    return {"trial": trial, "epochs": figures, "diverged": diverged}


def read_config(path: Path) -> tuple[Trial, int]:
    """The configuration select chose (its config.json): the trial and its epochs."""
    chosen = read_json(path)
    try:
        return Trial(**{axis: chosen[axis] for axis in AXES}), int(chosen["epochs"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: malformed configuration ({type(e).__name__}: {e}); run "
                        f"`dvc repro select`") from None


def divergence(trial: Trial, diverged: dict) -> str:
    """``name (loss nan at epoch 3)`` of an item that diverged."""
    losses = ", ".join(f"{k} {v}" for k, v in diverged.items() if k != "epoch")
    return f"{trial.name} ({losses} at epoch {diverged['epoch']})"


def configurations(items: list[dict], shown: tuple[str, ...] = (*AXES, "epochs")) -> list[dict]:
    """One row per (item, listed epoch), in grid order, labelled by its values of ``shown``; a
    diverged item has none."""
    rows = [{**asdict(item["trial"]), "epochs": e, "item": item["trial"].name,
             "val_accuracy": m["val_accuracy"], "val_loss": m["val_loss"]}
            for item in items for e, m in item["epochs"].items()]
    return [{**row, "label": label(row, shown)} for row in rows]


def select_best(rows: list[dict]) -> dict:
    """Highest validation accuracy; ties go to the lower validation loss, then to the earlier row
    (grid order, fewer epochs first)."""
    if not rows:
        raise DataError("no configuration to select from: the search grid is empty")
    return min(enumerate(rows), key=lambda ir: (-ir[1]["val_accuracy"], ir[1]["val_loss"],
                                                ir[0]))[1]
