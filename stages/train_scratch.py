"""train_scratch: minibatch SGD of the scratch MLP; exports parameters and weight trajectory.

HISTORY_CSV holds the per-epoch curves (dvc.yaml's plots "scratch loss" and "scratch accuracy").
"""

import fmnist_mlp.core.startup  # noqa: F401  (first: the numeric profile before numpy)

from pathlib import Path

import numpy as np

from fmnist_mlp.core import cli, files
from fmnist_mlp.core.data import load_split
from fmnist_mlp.core.params import load_section
from fmnist_mlp.evaluation.metrics import no_better_than_chance
from fmnist_mlp.numpy_mlp.scratch import (
    ScratchConfig,
    initial_params,
    require_memory,
    save_model,
)
from fmnist_mlp.sgd.minibatch import sgd


def main(prepared_dir: Path, model_dir: Path, metrics_json: Path, history_csv: Path) -> None:
    cfg = load_section(ScratchConfig)
    train, val = load_split(prepared_dir, "train"), load_split(prepared_dir, "val")
    spec = cfg.spec(train)
    steps = cfg.epochs * -(-len(train.X) // cfg.batch_size)  # SGD steps in all
    snapshots = cfg.epochs + 1 + (steps // cfg.snapshot_every if cfg.snapshot_every else 0)
    require_memory(spec, copies=snapshots + 6, rows=len(train.X))
    with files.outputs(model_dir, metrics_json, history_csv):
        result = sgd(
            initial_params(cfg, spec), train.X.astype(cfg.dtype), train.Y,
            spec, epochs=cfg.epochs, batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate, l2=cfg.l2,
            rng=np.random.default_rng(cfg.shuffle_seed),
            val=(val.X, val.Y),
            snapshot_every=cfg.snapshot_every,
        )
        h = result.history
        save_model(model_dir, result, spec)
        files.write_json(metrics_json, {"val_accuracy": h.val_accuracy[-1],
                                        "val_loss": h.val_loss[-1]})  # train: HISTORY_CSV
        files.write_csv(history_csv, h.rows())
    classes = train.Y.shape[1]
    if no_better_than_chance(h.val_accuracy[-1], len(val.X), classes):
        cli.log("train_scratch", f"warning: val accuracy {h.val_accuracy[-1]:.4f} is no better "
                                 f"than chance (1/{classes}): the model learned nothing; try "
                                 f"a lower scratch.learning_rate than {cfg.learning_rate}")
    files.record_timing("train_scratch", seconds_per_epoch=float(np.mean(h.seconds)))
    cli.log("train_scratch", f"val accuracy {h.val_accuracy[-1]:.4f}, val loss "
                             f"{h.val_loss[-1]:.4f}, {np.mean(h.seconds):.3f} s/epoch")


if __name__ == "__main__":
    cli.run(main, __doc__)
