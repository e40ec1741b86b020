"""The select stage's work (stages/select_best.py says what it reads and writes): the current
grid's items ranked by their mean over the seeds, the grid's conclusions (each axis's effect, the
configurations that could be the best, their equivalence to the winner: study.py), the winner
exported."""

from __future__ import annotations

import shutil
from pathlib import Path

from fmnist_mlp.core import cli, files
from fmnist_mlp.core.data import NUM_CLASSES
from fmnist_mlp.core.errors import DataError
from fmnist_mlp.core.params import load_section
from fmnist_mlp.grid.search import (
    AXES,
    SearchConfig,
    checkpoint_name,
    divergence,
    expand_grid,
)
from fmnist_mlp.selection import figure
from fmnist_mlp.selection.ranking import (
    LABELS,
    at_chance,
    compare,
    configurations,
    label,
    overlay,
    rank,
    read_item,
    select_best,
    varying,
)
from fmnist_mlp.selection.study import SelectConfig, conclude

RESULT_COLUMNS = ("label", *AXES, "epochs", "val_accuracy", "std", "ci95", "val_loss",
                  "possibly_best", "mcb_low", "mcb_high", "vs_best_high", "equivalence",
                  "p_vs_best", "distinguishable", "val_accuracy_seeds")
EFFECT_COLUMNS = ("effect", "axis", "estimate", "low", "high", "p")


def warn_stale(root: Path, names: set[str]) -> None:
    stale = sorted({p.name for p in root.iterdir()} - names) if root.is_dir() else []
    if stale:
        cli.log("select", f"warning: {root} also holds {len(stale)} item(s) not in the grid "
                          f"({', '.join(stale)}): not read, but part of this stage's dependency "
                          f"hash; remove them for a dvc.lock like a fresh clone's")


def alive(rows: list[dict]) -> list[dict]:
    """``rows`` without the configurations no better than chance (named), or DataError if that
    leaves none."""
    dead = at_chance(rows)
    if dead and len(dead) == len(rows):
        raise DataError(f"every configuration is no better than chance (val accuracy "
                        f"{max(r['val_accuracy'] for r in rows):.4f} at best, chance is "
                        f"1/{NUM_CLASSES}), nothing to select; check search.learning_rate (too "
                        f"high kills the units, too low learns nothing) and search.epochs")
    if dead:
        cli.log("select", f"left out {len(dead)} configuration(s) no better than chance "
                          f"(1/{NUM_CLASSES}): " + "; ".join(
                                 f"{r['item']} at {r['epochs']} epochs (val accuracy "
                                 f"{r['val_accuracy']:.4f})" for r in dead))
    return [r for r in rows if r not in dead]


def verdict(runner_up: dict | None, alpha: float, seeds: int) -> str:
    """The winner against the runner-up alone (paired t-test over the seeds), in words."""
    if runner_up is None:
        return "the only configuration"
    if seeds < 2:
        return "one seed: no test; rerun with more search.seeds"
    word = "distinguishable from" if runner_up["distinguishable"] else "not distinguishable from"
    return (f"{word} the runner-up ({runner_up['label']}): paired t-test over {seeds} seeds, "
            f"p = {runner_up['p_vs_best']:.3g}, alpha {alpha:g}")


def headline(found: dict, rows: list[dict], alpha: float, shown: int = 6) -> str:
    """The possibly-best set in words: its members, or those ruled out when they are fewer (at
    most ``shown`` named, the number of the others said)."""
    names = found["possibly_best"]
    out = [r["label"] for r in rows if r["label"] not in names]
    named, word = (names, ": ") if len(names) <= len(out) or not out else (out, "; ruled out: ")
    listed = "; ".join(named[:shown]) + (f" and {len(named) - shown} more"
                                         if len(named) > shown else "")
    return (f"{len(names)} of {len(rows)} configuration(s) could be the best (Hsu's MCB, "
            f"{1 - alpha:.0%} simultaneous){word if named else ''}{listed}")


def select(search_root: Path, curves_root: Path, metrics_json: Path, report_json: Path,
           results_csv: Path, results_png: Path, best_dir: Path, overlay_csv: Path,
           effects_json: Path, effects_csv: Path) -> None:
    cfg = load_section(SearchConfig)
    sel = load_section(SelectConfig)
    grid = expand_grid(cfg)
    items = [read_item(search_root / t.name, t, cfg.epochs, cfg.seeds) for t in grid]
    warn_stale(search_root, {t.name for t in grid})
    warn_stale(curves_root, {f"{t.name}.csv" for t in grid})
    diverged = [divergence(item["trial"], item["diverged"]) for item in items if item["diverged"]]
    if len(diverged) == len(items):
        raise DataError(f"every item diverged, nothing to select: {'; '.join(diverged)}; "
                        f"lower search.learning_rate")
    if diverged:
        cli.log("select", f"left out {len(diverged)} item(s) with a diverged seed: "
                          f"{'; '.join(diverged)}")
    shown = varying(cfg)
    grid_rows = alive(configurations(items, shown, cfg.seeds))
    winner = select_best(grid_rows)
    found = conclude(items, grid_rows, cfg, sel,
                     lambda axis, level: LABELS[axis].format(level))
    for line in found["said"]:
        cli.log("select", line)
    rows = [{**r, **found["configs"].get((r["item"], r["epochs"]), {})}
            for r in compare(grid_rows, winner, sel.alpha)]  # grid order
    best, *others = rank(rows)  # stable: the same winner as select_best
    runner_up = others[0] if others else None
    kept = {(r["item"], r["epochs"]) for r in grid_rows}  # the seed's protocol: the same ones
    single = select_best([r for r in configurations(items, shown, seeds=cfg.seeds[:1])
                          if (r["item"], r["epochs"]) in kept])
    constant = label({k: getattr(cfg, k)[0] for k in LABELS},
                     tuple(k for k in LABELS if k not in shown))
    said = verdict(runner_up, sel.alpha, len(cfg.seeds))
    said_best = headline(found, rank(rows), sel.alpha)
    leaders = list(dict.fromkeys(r["item"] for r in (best, *others)))  # items by best rank
    curves = overlay(curves_root, grid, tuple(k for k in shown if k != "epochs"), leaders)
    with files.outputs(metrics_json, report_json, results_csv, results_png, best_dir,
                       overlay_csv, effects_json, effects_csv):
        files.write_csv(overlay_csv, curves, ("epoch", "item", "rank", "val_accuracy"))
        best_dir.mkdir(parents=True, exist_ok=True)
        for seed in cfg.seeds:
            shutil.copyfile(search_root / best["item"] / checkpoint_name(seed, best["epochs"]),
                            best_dir / f"model_seed{seed}.keras")
        shutil.copyfile(curves_root / f"{best['item']}.csv", best_dir / "history.csv")
        chosen = {k: best[k] for k in (*AXES, "epochs")}
        files.write_json(best_dir / "config.json", {**chosen, "seeds": list(cfg.seeds)})
        files.write_json(metrics_json, {
            "val_accuracy": best["val_accuracy"], "accuracy_std": best["std"],
            "val_loss": best["val_loss"],
            "seed0_val_accuracy": single["val_accuracy"], **found["metrics"]})
        files.write_json(effects_json, found["report"])
        files.write_csv(effects_csv, found["effects"], EFFECT_COLUMNS)
        files.write_json(report_json, {
            "best": {**chosen, "item": best["item"], "label": best["label"],
                     "val_accuracy_seeds": best["val_accuracy_seeds"], "ci95": best["ci95"]},
            "p_runner_up": runner_up["p_vs_best"] if runner_up else 1.0,
            "runner_up": runner_up and {"label": runner_up["label"],
                                        "val_accuracy": runner_up["val_accuracy"],
                                        "std": runner_up["std"],
                                        "p_vs_best": runner_up["p_vs_best"]},
            "verdict": said_best,
            "possibly_best": found["possibly_best"],
            "equivalence": {"margin": sel.margin, **found["equivalence"]},
            "paired_runner_up": said,
            "not_distinguishable_from_best": [r["label"] for r in others
                                              if not r["distinguishable"]],
            "single_seed": {"seed": cfg.seeds[0], "label": single["label"],
                            "val_accuracy": single["val_accuracy"]},
            "seeds": list(cfg.seeds), "alpha": sel.alpha, "configs": len(rows),
            "items": len(items), "diverged_items": len(diverged)})
        files.write_csv(results_csv, [
            {**{k: r.get(k) for k in RESULT_COLUMNS[:-1]},
             "val_accuracy_seeds": " ".join(f"{v:.6g}" for v in r["val_accuracy_seeds"])}
            for r in rows], RESULT_COLUMNS)
        ranks = [best, *others]  # rank order for the figure
        picked = next(i for i, r in enumerate(ranks) if r["label"] == single["label"])
        figure.ranking(
            results_png, [r["label"] for r in ranks], [r["val_accuracy"] for r in ranks],
            f"validation accuracy, mean over the seeds with its {1 - sel.alpha:.0%} interval\n"
            f"given these seeds (their shared effect moves every bar alike)",
            f"Keras grid search: {len(rows)} configurations x {len(cfg.seeds)} seeds, best on top"
            + (f"\n{constant} in all" if len(shown) < len(LABELS) else ""),
            errors=[r.get("mean_ci") or 0.0 for r in ranks],
            possibly_best=[bool(r.get("possibly_best")) for r in ranks],
            alpha=sel.alpha, marked=(picked, f"the single-run protocol's pick (seed "
                                             f"{cfg.seeds[0]})"))
    cli.log("select", f"best of {len(rows)} configurations: {best['label']} (val accuracy "
                      f"{best['val_accuracy']:.4f} +- {best['std']:.4f} over "
                      f"{len(cfg.seeds)} seeds); {said_best}; the single-run protocol (seed "
                      f"{cfg.seeds[0]}) picks {single['label']}")
