"""The hyper-parameter grid, its items' names, and the selection of the best configuration.

No TensorFlow here: the search logic is tested without training anything. An *item* is one DVC
matrix item (one set of axis values) trained once per seed for max(epochs); a *configuration* is
an item at one listed epoch (the seed's grid: 12 items, 24 configurations), known by its figures
over the seeds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from fmnist_mlp.config import SearchConfig
from fmnist_mlp.errors import DataError
from fmnist_mlp.stage import read_json, write_json
from fmnist_mlp.stats import paired_p, summary


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


def checkpoint_name(seed: int, epoch: int | str) -> str:
    """The file of seed ``seed``'s model after ``epoch`` epochs in an item's directory."""
    return f"model_seed{seed}_e{epoch}.keras"


def write_item_metrics(path: Path, trial: Trial, seeds: dict[int, dict]) -> None:
    """metrics.json of one item: its axes; per seed, val_accuracy and val_loss at each listed
    epoch, or where training diverged ({"diverged": {"epoch": e, "loss": "nan", ...}})."""
    runs = {str(seed): result if "diverged" in result else
            {"epochs": {str(e): m for e, m in sorted(result.items())}}
            for seed, result in seeds.items()}
    write_json(path, {"trial": asdict(trial), "seeds": runs})


def read_item(item_dir: Path, trial: Trial, epochs: tuple[int, ...],
              seeds: tuple[int, ...]) -> dict:
    """The item's metrics.json, checked against the trial, the listed epochs and the seeds:
    {"trial", "seeds": {seed: {epoch: {"val_accuracy", "val_loss"}}}, "diverged": {seed: ...}}."""
    path = Path(item_dir) / "metrics.json"
    try:
        item = json.loads(path.read_text())
        recorded = Trial(**item["trial"])
        runs = {int(seed): run for seed, run in item["seeds"].items()}
        if sorted(runs) != sorted(seeds):
            raise ValueError(f"seeds {sorted(runs)}, not {sorted(seeds)}")
        diverged = {seed: run["diverged"] for seed, run in runs.items() if "diverged" in run}
        for d in diverged.values():
            int(d["epoch"])
        figures = {seed: {e: run["epochs"][str(e)] for e in epochs}
                   for seed, run in runs.items() if seed not in diverged}
        for by_epoch in figures.values():
            for m in by_epoch.values():
                float(m["val_accuracy"]), float(m["val_loss"])
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run `dvc repro search`") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DataError(f"{path}: malformed item metrics ({type(e).__name__}: {e}); expected "
                        f"trial, and per seed of {list(seeds)} val_accuracy, val_loss at epochs "
                        f"{list(epochs)}") from None
    if recorded != trial:
        raise DataError(f"{path}: records {recorded}, expected {trial}")
    return {"trial": trial, "seeds": figures, "diverged": diverged}


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


def configurations(items: list[dict], shown: tuple[str, ...] = (*AXES, "epochs"),
                   seeds: tuple[int, ...] | None = None) -> list[dict]:
    """One row per (item, listed epoch), in grid order, labelled by its values of ``shown``, with
    the per-seed figures (``val_accuracy_seeds``, ``val_loss_seeds``, in ``seeds`` order) and
    their means; an item with a diverged seed has none. ``seeds`` (a subset) restricts the row to
    those runs: (seeds[0],) is the seed's single-run protocol."""
    rows = []
    for item in items:
        if item["diverged"]:
            continue
        runs = item["seeds"] if seeds is None else {s: item["seeds"][s] for s in seeds}
        for e in next(iter(runs.values())):
            acc = [run[e]["val_accuracy"] for run in runs.values()]  # (S,)
            loss = [run[e]["val_loss"] for run in runs.values()]  # (S,)
            row = {**asdict(item["trial"]), "epochs": e, "item": item["trial"].name,
                   "val_accuracy": float(np.mean(acc)), "val_loss": float(np.mean(loss)),
                   "val_accuracy_seeds": acc, "val_loss_seeds": loss}
            rows.append({**row, "label": label(row, shown)})
    return rows


def compare(rows: list[dict], best: dict, alpha: float) -> list[dict]:
    """Each row with the spread of its val accuracy over the seeds (std, ci95) and the paired
    t-test against ``best`` over the same seeds: ``p_vs_best``, and ``distinguishable`` when
    p < alpha (False for the best itself)."""
    out = []
    for row in rows:
        p = 1.0 if row is best else paired_p(best["val_accuracy_seeds"],
                                              row["val_accuracy_seeds"])
        spread = summary(row["val_accuracy_seeds"])
        out.append({**row, "std": spread["std"], "ci95": spread["ci95"], "p_vs_best": p,
                    "distinguishable": p < alpha})
    return out


def rank(rows: list[dict]) -> list[dict]:
    """The rows best first: highest (mean) validation accuracy; ties go to the lower (mean)
    validation loss, then to the earlier row (grid order, fewer epochs first: a stable sort)."""
    return sorted(rows, key=lambda r: (-r["val_accuracy"], r["val_loss"]))


def select_best(rows: list[dict]) -> dict:
    """The first of ``rank(rows)``."""
    if not rows:
        raise DataError("no configuration to select from: the search grid is empty")
    return rank(rows)[0]
