"""The pipeline's search against the seed's way, on one reduced grid and data subset, in one run.

Pipeline: each item trains once for max(epochs), validated every epoch (for its history curves)
and checkpointed at every listed epoch, with steps_per_execution. Seed (its Problem 2 code): a
nested loop, one model.fit per configuration (separate runs for each epochs value, no validation
during training, default steps_per_execution), then model.evaluate on the validation split with
Keras' default batch.
Needs data/prepared. Usage: python -m bench.search [TRAIN_EXAMPLES]
"""

import sys
import tempfile
import time
from pathlib import Path

from fmnist_mlp.config import SearchConfig, read_params
from fmnist_mlp.data import load_split
from fmnist_mlp.keras_search import fit, train_item
from fmnist_mlp.search import configurations, expand_grid, read_item, select_best

GRID = SearchConfig.from_dict({**read_params()["search"], "hidden_layers": [3, 4],
                               "hidden_units": [30],
                               "batch_size": [64, 128], "epochs": [5, 10]})


def pipeline_way(train, val, root: Path) -> dict:
    for trial in expand_grid(GRID):
        train_item(trial, train, val, GRID.epochs, GRID.seed, GRID.steps_per_execution,
                   root / trial.name, root / f"{trial.name}.csv")
    items = [read_item(root / t.name, t, GRID.epochs) for t in expand_grid(GRID)]
    return select_best(configurations(items))


def seed_way(train, val) -> dict:
    best = {"val_accuracy": 0.0}
    for trial in expand_grid(GRID):
        for epochs in GRID.epochs:
            model = fit(trial, train, None, epochs, GRID.seed, 1).model
            loss, accuracy = model.evaluate(val.X, val.Y, verbose=0)
            if accuracy > best["val_accuracy"]:
                best = {"item": trial.name, "epochs": epochs, "val_accuracy": accuracy}
    return best


def main(n_train: int = 12000) -> None:
    train = load_split("data/prepared", "train").head(n_train)
    val = load_split("data/prepared", "val")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ours = pipeline_way(train, val, Path(tmp))
        ours_s = time.perf_counter() - start
    start = time.perf_counter()
    seeds = seed_way(train, val)
    seed_s = time.perf_counter() - start
    print(f"grid: {len(expand_grid(GRID))} items x epochs {list(GRID.epochs)}, "
          f"{len(train.X)} training examples")
    print(f"pipeline: {ours_s:.1f} s, best {ours['item']} @{ours['epochs']} "
          f"val_accuracy {ours['val_accuracy']:.4f}")
    print(f"seed way: {seed_s:.1f} s, best {seeds['item']} @{seeds['epochs']} "
          f"val_accuracy {seeds['val_accuracy']:.4f}")
    same = (ours["item"], ours["epochs"]) == (seeds["item"], seeds["epochs"])
    print(f"wall-time ratio pipeline/seed: {ours_s / seed_s:.2f}; same choice: {same}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
