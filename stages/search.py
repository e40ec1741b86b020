"""search (one DVC matrix item): train the seed's Keras MLP for one grid point.

The flags are the item's value of each of the six axes (search.Trial's fields), as DVC expands
``${item}``. Trains the configuration once per seed of search.seeds for max(search.epochs) and
writes OUT_ROOT/<item name>/: metrics.json (per seed, validation figures at every listed epoch),
model_seed<S>_e<E>.keras at every listed epoch and history.csv (every run's curves); and the
curves' mean over the seeds to CURVES_ROOT/<item name>.csv (dvc.yaml's plots). TensorFlow's own
log goes to logs/search-<item name>.log.
"""

import fmnist_mlp.core.startup  # noqa: F401  (first: the numeric profile before numpy)

from pathlib import Path

from fmnist_mlp.core import cli, files, resources
from fmnist_mlp.core.data import load_split
from fmnist_mlp.core.params import load_section
from fmnist_mlp.grid.search import SearchConfig, Trial, check_disk, divergence
from fmnist_mlp.keras_search import native_log


def main(prepared_dir: Path, out_root: Path, curves_root: Path, trial: Trial) -> None:
    cfg = load_section(SearchConfig)
    check_disk(cfg, [trial], out_root)  # the grid's, once, in `make repro`
    train, val = load_split(prepared_dir, "train"), load_split(prepared_dir, "val")
    resources.require_memory(f"search.hidden_units {trial.hidden_units} x hidden_layers "
                             f"{trial.hidden_layers}",
                             trial.memory(train.X.shape[1], train.Y.shape[1]))
    native_log.capture(f"search-{trial.name}")
    from fmnist_mlp.keras_search.train import train_item

    out_dir, curves = out_root / trial.name, curves_root / f"{trial.name}.csv"
    with files.outputs(out_dir, curves):
        results, seconds = train_item(trial, train, val, cfg.epochs, cfg.seeds, out_dir, curves)
    files.record_timing(f"search-{trial.name}", train=seconds)
    diverged = {seed: r["diverged"] for seed, r in results.items() if "diverged" in r}
    if diverged:
        cli.log("search", f"warning: diverged, select will leave it out: "
                          f"{divergence(trial, diverged)}")
    runs = {seed: r for seed, r in results.items() if seed not in diverged}
    figures = ", ".join(f"@{e} " + "/".join(f"{r[e]['val_correct'] / len(val.X):.4f}"
                                            for r in runs.values())
                        for e in cfg.epochs) if runs else "none"
    cli.log("search", f"{trial.name}: val accuracy (seeds {'/'.join(map(str, runs))}) "
                      f"{figures}; {seconds:.1f} s")


if __name__ == "__main__":
    cli.run(main, __doc__, Trial)
