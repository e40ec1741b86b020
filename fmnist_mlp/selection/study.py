"""What the grid concludes: select's items as the factorial model's runs (factorial.py), each
axis's effect, the configurations that could be the best and their equivalence to the best
(best.py), in the forms select writes (reports, the headline metrics, the effects chart).

The select section of params.yaml (``SelectConfig``) holds the confidence level (1 - alpha),
the equivalence margin and the draws of MCB's critical value.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import Field
from scipy import stats

from fmnist_mlp.core.params import Fraction, Int, Section
from fmnist_mlp.grid.search import AXES, SearchConfig
from fmnist_mlp.selection.best import equivalence, mcb, variances
from fmnist_mlp.selection.factorial import Runs, analyse

MODEL = ("split-plot mixed model: accuracy ~ item axes (main effects and two-way interactions) + "
         "seed (block) + run (random: an item trained with one seed) + epochs + epochs x each "
         "item axis + checkpoint error; fitted in its two strata by least squares "
         "(docs/statistics.md)")


class SelectConfig(Section):
    """select's statistics (params section ``select``): ``alpha`` (1 - alpha is the confidence of
    every interval, of the possibly-best set and of the equivalence verdicts), the equivalence
    margin (accuracy) and the Monte Carlo draws of MCB's critical value, with their seed."""

    SECTION = "select"
    alpha: Fraction
    margin: Fraction
    mcb_draws: Annotated[int, Field(ge=1000)]
    mcb_seed: Annotated[Int, Field(ge=0)]


def runs_of(items: list[dict], cfg: SearchConfig) -> Runs:
    """The model's runs from select's items (ranking.read_item, none diverged, every
    configuration alive): y (R, K) in the items' grid order, seeds in search.seeds' order; the
    item axes with more than one level among them, their levels in params.yaml's order."""
    K = len(cfg.epochs)
    y, seeds, index, values = [], [], [], {a: [] for a in AXES}
    for i, item in enumerate(items):
        for seed in cfg.seeds:
            y.append([item["seeds"][seed][e]["val_accuracy"] for e in cfg.epochs])
            seeds.append(seed)
            index.append(i)
            for a in AXES:
                values[a].append(getattr(item["trial"], a))
    levels = {a: tuple(v for v in getattr(cfg, a) if v in values[a]) for a in AXES}
    levels = {a: names for a, names in levels.items() if len(names) > 1}
    factors = {a: np.array(values[a], dtype=object) for a in levels}  # (R,) each
    return Runs(np.array(y, dtype=np.float64).reshape(-1, K), factors, levels,
                np.array(seeds, dtype=object), tuple(cfg.epochs), np.array(index))


def finite(value):
    """``value`` with every non-finite float as None (JSON null: 'not estimable')."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def compare(ybar: np.ndarray, cell: np.ndarray, noise: dict, K: int, S: int, alpha: float,
            sel: SelectConfig, said: list[str]) -> tuple[dict, list[dict]]:
    """MCB and the equivalence verdicts for the configurations' means ``ybar`` (C,) of items
    ``cell`` (C,), or what stands in for them when there is nothing to compare or no noise to
    judge with (said)."""
    C = len(ybar)
    several_items = len(np.unique(cell)) > 1
    no_noise = C > 1 and ((several_items and not noise["df_runs"] > 0)
                          or (K > 1 and not noise["df_within"] > 0))
    if C == 1:
        said.append("one configuration: nothing to compare, it is the best")
    if no_noise:
        said.append("no degrees of freedom left for the noise: no intervals, every "
                    "configuration could be the best; add search.seeds")
        chosen = {"d": np.nan, "low": [np.nan] * C, "high": [np.nan] * C,
                  "possibly_best": [True] * C}
    else:  # one configuration: mcb says so at once
        chosen = mcb(ybar, cell, noise, K, S, alpha, sel.mcb_draws, sel.mcb_seed)
    return chosen, equivalence(ybar, chosen, sel.margin)


def nothing_to_model(rows: list[dict], cfg: SearchConfig, sel: SelectConfig,
                     said: list[str]) -> dict:
    """The conclusions when no item has every checkpoint above chance: no model, no noise to
    judge with, every configuration left could be the best (said)."""
    said.append("no item has every checkpoint above chance: no model of the grid, every "
                "configuration left could be the best")
    configs = {(r["item"], r["epochs"]): {"mean_ci": None, "mcb_low": None, "mcb_high": None,
                                          "possibly_best": True, "vs_best_high": None,
                                          "equivalence": "undecided"} for r in rows}
    possibly = [r["label"] for r in rows]
    counts = {"equivalent": 0, "worse": 0, "undecided": len(rows)}
    report = {"model": MODEL, "confidence": 1 - sel.alpha, "margin": sel.margin,
              "observations": 0, "levels": [], "axes": [], "anova": [], "interactions": [],
              "mcb": {"possibly_best": possibly}, "equivalence": counts,
              "largest_effect": None}
    return {"report": report, "configs": configs, "effects": [],
            "metrics": {"possibly_best": len(rows)}, "said": said, "possibly_best": possibly,
            "equivalence": counts}


def conclude(items: list[dict], rows: list[dict], cfg: SearchConfig, sel: SelectConfig,
             labels) -> dict:
    """The study's conclusions. ``items``: select's items in grid order; ``rows``: the
    configurations alive (ranking.configurations, with ``val_accuracy`` from the exact counts);
    ``labels(axis, level)``: a level in words. Items with a diverged seed
    or a configuration no better than chance stay out of the model (select names them).
    Returns {"report": every estimate, "configs": {(item, epochs): per-configuration fields},
    "effects": the chart's rows, "metrics": the headline numbers, "said": one-line notes}."""
    alive = {(r["item"], r["epochs"]): r for r in rows}
    model = [item for item in items if not item["diverged"] and all(
        (item["trial"].name, e) in alive for e in cfg.epochs)]
    said = []
    left = sorted({r["item"] for r in rows} - {item["trial"].name for item in model})
    if left:
        said.append(f"left out of the model, a configuration no better than chance: "
                    f"{', '.join(left)}")
    if not model:
        return nothing_to_model(rows, cfg, sel, said)
    runs = runs_of(model, cfg)
    R, K = runs.y.shape
    S = len(cfg.seeds)
    configs = [(item["trial"].name, e) for item in model for e in cfg.epochs]  # (C,) item-major
    cell = np.repeat(np.arange(len(model)), K)  # (C,) each configuration's item
    ybar = np.array([alive[c]["val_accuracy"] for c in configs])  # (C,)
    analysis = analyse(runs, sel.alpha)
    noise = analysis["noise"]
    strata = analysis["strata"]
    if not strata.pairs and strata.axes:
        said.append("the items present cannot estimate the axes' two-way interactions: main "
                    "effects only")
    elif not strata.axes and runs.levels:
        said.append("the items present cannot separate the axes: no axis effect, each item "
                    "its own cell")
    if S == 1:
        said.append("one seed: no seed blocks; the runs' noise comes from the grid's higher "
                    "interactions only")
    cell_noise = analysis["cell_noise"]
    chosen, equal = compare(ybar, cell, cell_noise, K, S, sel.alpha, sel, said)
    v_same, v_other, df_other = variances(cell_noise, K, S)
    # a configuration mean's interval given these seeds (their shared effect moves every
    # configuration alike): half the variance of two items' difference
    half = float(stats.t.ppf(1 - sel.alpha / 2, df_other) * math.sqrt(v_other / 2)) \
        if np.isfinite(chosen["d"]) else np.nan
    per_config = {c: {"mean_ci": half, "mcb_low": chosen["low"][i], "mcb_high": chosen["high"][i],
                      "possibly_best": chosen["possibly_best"][i], **equal[i]}
                  for i, c in enumerate(configs)}
    effects = [{"effect": f"{labels(r['axis'], r['level'])} vs {labels(r['axis'], r['reference'])}",
                "axis": r["axis"], "estimate": r["effect"], "low": r["low"], "high": r["high"],
                "p": r["p"]} for r in analysis["levels"] if "effect" in r]
    largest = max(effects, key=lambda e: abs(e["estimate"])) if effects else None
    possibly = [alive[c]["label"] for c, p in zip(configs, chosen["possibly_best"]) if p]
    counts = {v: sum(e["equivalence"] == v for e in equal)
              for v in ("equivalent", "worse", "undecided")}
    report = {
        "model": MODEL, "confidence": 1 - sel.alpha, "margin": sel.margin,
        "observations": R * K, "runs": R, "seeds": S, "epochs": list(cfg.epochs),
        "left_out": left, "interactions_in_model": strata.pairs,
        "levels": analysis["levels"], "axes": analysis["axes"], "anova": analysis["anova"],
        "interactions": analysis["interactions"], "noise": noise, "checks": analysis["checks"],
        "mcb": {"critical_value": chosen["d"], "draws": sel.mcb_draws, "seed": sel.mcb_seed,
                "noise": "the cell-means model's: item x seed between runs, epochs x item x "
                         "seed within (every interaction of the axes in, epochs x seed out)",
                "ms_runs": cell_noise["ms_runs"], "df_runs": cell_noise["df_runs"],
                "ms_within": cell_noise["ms_within"], "df_within": cell_noise["df_within"],
                "se_same_item": math.sqrt(v_same), "se_two_items": math.sqrt(v_other),
                "df_two_items": df_other, "possibly_best": possibly,
                # the seeds at which MCB would tell apart two items one margin apart (its
                # reach d se shrinks as 1/sqrt(seeds); d taken as it is now)
                "seeds_to_resolve_margin": math.ceil(S * (chosen["d"] * math.sqrt(v_other)
                                                          / sel.margin) ** 2)
                if np.isfinite(chosen["d"] * v_other) and len(configs) > 1 else None},
        "equivalence": counts,
        "largest_effect": largest,
    }
    metrics = {"possibly_best": len(possibly)}
    if largest:
        metrics["top_effect"] = largest["estimate"]
        if math.isfinite(largest["high"] - largest["low"]):  # no interval without error df
            metrics["top_effect_ci"] = (largest["high"] - largest["low"]) / 2
    return finite({"report": report, "configs": per_config, "effects": effects,
                   "metrics": metrics, "said": said, "possibly_best": possibly,
                   "equivalence": counts})
