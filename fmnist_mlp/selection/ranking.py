"""select's logic: read exactly the current grid's items, label, compare and rank their
configurations. Only the select stage runs this (a search item does not depend on it).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from fmnist_mlp.core.data import NUM_CLASSES
from fmnist_mlp.core.errors import DataError
from fmnist_mlp.evaluation.metrics import no_better_than_chance
from fmnist_mlp.evaluation.stats import paired_p, summary
from fmnist_mlp.grid.search import AXES, SearchConfig, Trial

LABELS = {"hidden_layers": "layers {}", "hidden_units": "units {}", "learning_rate": "lr {}",
          "batch_size": "batch {}", "l2": "l2 {}", "activation": "{}",
          "epochs": "epochs {}"}  # a configuration's


def varying(cfg: SearchConfig) -> tuple[str, ...]:
    """The axes (and "epochs") with more than one value in the grid: what tells configurations
    apart."""
    return tuple(a for a in LABELS if len(getattr(cfg, a)) > 1)


def label(config: dict, keys: tuple[str, ...]) -> str:
    """``layers 3, batch 128, epochs 40``: the configuration's values of ``keys``."""
    return ", ".join(LABELS[k].format(config[k]) for k in keys) or "the only configuration"




def read_item(item_dir: Path, trial: Trial, epochs: tuple[int, ...],
              seeds: tuple[int, ...]) -> dict:
    """The item's metrics.json, checked against the trial, the listed epochs and the seeds:
    {"trial", "seeds": {seed: {epoch: {"val_accuracy", "val_loss"}}}, "diverged": {seed: ...}};
    each accuracy is the exact count over the split (val_correct / val_examples, in float64)."""
    path = Path(item_dir) / "metrics.json"
    try:
        item = json.loads(path.read_text())
        recorded = Trial(**item["trial"])
        examples = int(item["val_examples"])
        if examples <= 0:
            raise ValueError(f"val_examples {examples}")
        runs = {int(seed): run for seed, run in item["seeds"].items()}
        if sorted(runs) != sorted(seeds):
            raise ValueError(f"seeds {sorted(runs)}, not {sorted(seeds)}")
        diverged = {seed: run["diverged"] for seed, run in runs.items() if "diverged" in run}
        for d in diverged.values():
            int(d["epoch"])
        figures = {seed: {e: figures_at(run["epochs"][str(e)], examples) for e in epochs}
                   for seed, run in runs.items() if seed not in diverged}
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run `dvc repro search`") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DataError(f"{path}: malformed item metrics ({type(e).__name__}: {e}); expected "
                        f"trial, val_examples, and per seed of {list(seeds)} val_correct, "
                        f"val_loss at epochs {list(epochs)}") from None
    if recorded != trial:
        raise DataError(f"{path}: records {recorded}, expected {trial}")
    return {"trial": trial, "seeds": figures, "diverged": diverged, "val_examples": examples}


def figures_at(recorded: dict, examples: int) -> dict:
    """{"val_correct", "val_accuracy", "val_loss"} of one run at one epoch, from its exact
    count."""
    correct = recorded["val_correct"]
    if not isinstance(correct, int) or not 0 <= correct <= examples:
        raise ValueError(f"val_correct {correct!r} is not a count of 0..{examples}")
    loss = float(recorded["val_loss"])
    return {"val_correct": correct, "val_accuracy": correct / examples, "val_loss": loss}


def overlay(curves_root: Path, trials: list[Trial], keys: tuple[str, ...],
            leaders: list[str]) -> list[dict]:
    """Every item's mean validation accuracy per epoch in one long table (epoch, item, rank,
    val_accuracy), the item labelled by ``keys``, ranked by its place in ``leaders`` (item names,
    the best first; the rest after them), the leaders' rows first: one line per item in one
    chart, the leading ones coloured. An item that diverged on every seed has no rows."""
    rows = []
    place = {name: i + 1 for i, name in enumerate(leaders)}
    for trial in sorted(trials, key=lambda t: place.get(t.name, len(place) + 1)):
        path = curves_root / f"{trial.name}.csv"
        try:
            with path.open() as f:
                curve = [(int(r["epoch"]), float(r["val_accuracy"])) for r in csv.DictReader(f)]
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"{path}: cannot read the item's curves ({type(e).__name__}: {e}); "
                            f"run `dvc repro search`") from None
        name = label(asdict(trial), keys) if keys else trial.name
        rank = place.get(trial.name, len(place) + 1)
        rows += [{"epoch": e, "item": name, "rank": rank, "val_accuracy": acc} for e, acc in curve]
    return rows


def configurations(items: list[dict], shown: tuple[str, ...] = (*AXES, "epochs"),
                   seeds: tuple[int, ...] | None = None) -> list[dict]:
    """One row per (item, listed epoch), in grid order, labelled by its values of ``shown``, with
    the per-seed figures (``val_accuracy_seeds``, ``val_loss_seeds``, in ``seeds`` order, or
    the seeds' increasing order: every row's lists pair by seed) and
    their means (the accuracy's from the exact counts: equal totals tie exactly); an item with a
    diverged seed has none. ``seeds`` (a subset) restricts the row to
    those runs: (seeds[0],) is the seed's single-run protocol."""
    rows = []
    for item in items:
        if item["diverged"]:
            continue
        order = sorted(item["seeds"]) if seeds is None else seeds  # paired by seed, not position
        runs = {s: item["seeds"][s] for s in order}
        for e in next(iter(runs.values())):
            correct = sum(run[e]["val_correct"] for run in runs.values())
            acc = [run[e]["val_accuracy"] for run in runs.values()]  # (S,)
            loss = [run[e]["val_loss"] for run in runs.values()]  # (S,)
            row = {**asdict(item["trial"]), "epochs": e, "item": item["trial"].name,
                   "val_accuracy": correct / (len(runs) * item["val_examples"]),
                   "val_loss": float(np.mean(loss)), "val_accuracy_seeds": acc,
                   "val_loss_seeds": loss, "val_examples": len(runs) * item["val_examples"]}
            rows.append({**row, "label": label(row, shown)})
    return rows


def at_chance(rows: list[dict]) -> list[dict]:
    """The configurations whose mean validation accuracy is no better than guessing (within
    three standard errors of 1/classes over all their validation predictions): a dead model,
    which select leaves out like a diverged one."""
    return [r for r in rows if no_better_than_chance(r["val_accuracy"], r["val_examples"],
                                                     NUM_CLASSES)]


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
