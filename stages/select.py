"""select: read exactly the current grid's items, pick the best configuration, export it.

Usage: python -m stages.select SEARCH_ROOT CURVES_ROOT METRICS_JSON REPORT_JSON RESULTS_CSV
           RESULTS_PNG BEST_DIR
METRICS_JSON: the winner's validation figures; REPORT_JSON: its configuration, its label (its
values of the axes that vary) and the counts; RESULTS_CSV and RESULTS_PNG: every
configuration's figures; BEST_DIR: model.keras, config.json and history.csv of the winner.
"""

import shutil
from pathlib import Path

from fmnist_mlp import plotting, stage
from fmnist_mlp.config import SearchConfig, load_section
from fmnist_mlp.errors import DataError
from fmnist_mlp.search import (
    AXES,
    LABELS,
    configurations,
    divergence,
    expand_grid,
    label,
    read_item,
    select_best,
    varying,
)


def warn_stale(root: Path, names: set[str]) -> None:
    stale = sorted({p.name for p in root.iterdir()} - names) if root.is_dir() else []
    if stale:
        stage.log("select", f"warning: {root} also holds {len(stale)} item(s) not in the grid "
                            f"({', '.join(stale)}): not read, but part of this stage's dependency "
                            f"hash; remove them for a dvc.lock like a fresh clone's")


def main(search_root: Path, curves_root: Path, metrics_path: Path, report_path: Path,
         results_path: Path, results_png: Path, best_dir: Path) -> None:
    cfg = load_section(SearchConfig)
    grid = expand_grid(cfg)
    items = [read_item(search_root / trial.name, trial, cfg.epochs) for trial in grid]
    warn_stale(search_root, {t.name for t in grid})
    warn_stale(curves_root, {f"{t.name}.csv" for t in grid})
    diverged = [divergence(item["trial"], item["diverged"]) for item in items if item["diverged"]]
    if len(diverged) == len(items):
        raise DataError(f"every item diverged, nothing to select: {'; '.join(diverged)}; "
                        f"lower search.learning_rate")
    if diverged:
        stage.log("select", f"left out {len(diverged)} diverged item(s): {'; '.join(diverged)}")
    shown = varying(cfg)
    rows = configurations(items, shown)
    best = select_best(rows)
    constant = label({k: getattr(cfg, k)[0] for k in LABELS}, tuple(k for k in LABELS
                                                                  if k not in shown))
    with stage.outputs(metrics_path, report_path, results_path, results_png, best_dir):
        best_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(search_root / best["item"] / f"model_e{best['epochs']}.keras",
                        best_dir / "model.keras")
        shutil.copyfile(curves_root / f"{best['item']}.csv", best_dir / "history.csv")
        chosen = {k: best[k] for k in (*AXES, "epochs")}
        stage.write_json(best_dir / "config.json", chosen)
        stage.write_json(metrics_path, {"val_accuracy": best["val_accuracy"],
                                        "val_loss": best["val_loss"]})
        stage.write_json(report_path, {"best": {**chosen, "item": best["item"],
                                                "label": best["label"]},
                                       "configs": len(rows), "items": len(items),
                                       "diverged_items": len(diverged)})
        stage.write_csv(results_path, [
            {k: r[k] for k in ("label", *AXES, "epochs", "val_accuracy", "val_loss")}
            for r in rows])
        plotting.ranking(results_png, [r["label"] for r in rows],
                         [r["val_accuracy"] for r in rows], "validation accuracy",
                         f"Keras grid search: {len(rows)} configurations, best on top"
                         + (f"\n{constant} in all" if len(shown) < len(LABELS) else ""))
    stage.log("select", f"best of {len(rows)} configurations: {best['label']} "
                        f"(val accuracy {best['val_accuracy']:.4f})")


if __name__ == "__main__":
    stage.run(main, __doc__)
