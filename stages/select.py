"""select: read exactly the current grid's items, pick the best configuration, export it.

Usage: python -m stages.select SEARCH_ROOT METRICS_JSON RESULTS_CSV RESULTS_PNG BEST_DIR
"""

import shutil
from pathlib import Path

from fmnist_mlp import plotting, stage
from fmnist_mlp.config import SearchConfig, load_section
from fmnist_mlp.errors import DataError
from fmnist_mlp.search import (
    AXES,
    configurations,
    divergence,
    expand_grid,
    read_item,
    select_best,
)


def main(search_root: Path, metrics_path: Path, results_path: Path, results_png: Path,
         best_dir: Path) -> None:
    cfg = load_section(SearchConfig)
    grid = expand_grid(cfg)
    items = [read_item(search_root / trial.name, trial, cfg.epochs) for trial in grid]
    stale = sorted({d.name for d in search_root.iterdir()} - {t.name for t in grid})
    if stale:
        stage.log("select", f"warning: {search_root} also holds {len(stale)} item(s) not in the "
                            f"grid ({', '.join(stale)}): not read, but part of this stage's "
                            f"dependency hash; remove them for a dvc.lock like a fresh clone's")
    diverged = [divergence(item["trial"], item["diverged"]) for item in items if item["diverged"]]
    if len(diverged) == len(items):
        raise DataError(f"every item diverged, nothing to select: {'; '.join(diverged)}; "
                        f"lower search.learning_rate")
    if diverged:
        stage.log("select", f"left out {len(diverged)} diverged item(s): {'; '.join(diverged)}")
    rows = configurations(items)
    best = select_best(rows)
    with stage.outputs(metrics_path, results_path, results_png, best_dir):
        best_dir.mkdir(parents=True, exist_ok=True)
        item_dir = search_root / best["item"]
        shutil.copyfile(item_dir / f"model_e{best['epochs']}.keras", best_dir / "model.keras")
        shutil.copyfile(item_dir / "history.csv", best_dir / "history.csv")
        chosen = {k: best[k] for k in (*AXES, "epochs")}
        stage.write_json(best_dir / "config.json", chosen)
        stage.write_json(metrics_path, {
            "best": {**chosen, "val_accuracy": best["val_accuracy"],
                     "val_loss": best["val_loss"]},
            "configs": len(rows),
            "items": len(items),
            "diverged_items": len(diverged),
        })
        stage.write_csv(results_path, [
            {k: r[k] for k in ("label", "val_accuracy", "val_loss")} for r in rows])
        plotting.ranking(results_png, [r["label"] for r in rows],
                         [r["val_accuracy"] for r in rows], "validation accuracy",
                         f"Keras grid search: {len(rows)} configurations, best on top")
    stage.log("select", f"best of {len(rows)} configurations: {best['label']} "
                        f"(val accuracy {best['val_accuracy']:.4f})")


if __name__ == "__main__":
    stage.run(main, __doc__)
