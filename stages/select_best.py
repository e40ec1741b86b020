"""select: read exactly the current grid's items, pick the best configuration, export it.

Usage: python stages/select_best.py SEARCH_ROOT METRICS_JSON RESULTS_CSV RESULTS_PNG BEST_DIR
"""

import shutil
import sys
from dataclasses import fields
from pathlib import Path

from fmnist_mlp import plotting, stage
from fmnist_mlp.config import SearchConfig, load_section
from fmnist_mlp.search import Trial, configurations, expand_grid, read_item, select_best


def main(argv: list[str]) -> None:
    search_root, metrics_path, results_path, results_png, best_dir = map(Path, argv)
    cfg = load_section(SearchConfig)
    grid = expand_grid(cfg)
    items = [read_item(search_root / trial.name, trial, cfg.epochs) for trial in grid]
    rows = configurations(items)
    best = select_best(rows)
    with stage.outputs(metrics_path, results_path, results_png, best_dir):
        best_dir.mkdir(parents=True, exist_ok=True)
        item_dir = search_root / best["item"]
        shutil.copyfile(item_dir / f"model_e{best['epochs']}.keras", best_dir / "model.keras")
        shutil.copyfile(item_dir / "history.csv", best_dir / "history.csv")
        chosen = {k: best[k] for k in (*(f.name for f in fields(Trial)), "epochs")}
        stage.write_json(best_dir / "config.json", chosen)
        stage.write_json(metrics_path, {
            "best": {**chosen, "val_accuracy": best["val_accuracy"],
                     "val_loss": best["val_loss"]},
            "configs": len(rows),
            "items": len(items),
            "seconds": sum(item["seconds"] for item in items),
        })
        stage.write_csv(results_path, [
            {k: r[k] for k in ("label", "val_accuracy", "val_loss", "seconds")} for r in rows])
        plotting.ranking(results_png, [r["label"] for r in rows],
                         [r["val_accuracy"] for r in rows], "validation accuracy",
                         f"Keras grid search: {len(rows)} configurations, best on top")
    stage.log("select", f"best of {len(rows)} configurations: {best['label']} "
                        f"(val accuracy {best['val_accuracy']:.4f})")


if __name__ == "__main__":
    stage.run("select", main, sys.argv[1:])
