"""prepare: normalise, one-hot encode and split train/val; test untouched.

Usage: python stages/prepare.py RAW_DIR OUT_DIR
"""

import sys
from pathlib import Path

from fmnist_mlp import stage
from fmnist_mlp.config import PrepareConfig, load_section
from fmnist_mlp.data import prepare, save_splits


def main(argv: list[str]) -> None:
    raw_dir, out_dir = map(Path, argv)
    cfg = load_section(PrepareConfig)
    with stage.outputs(out_dir):
        splits = prepare(raw_dir, cfg.scale, cfg.offset, cfg.val_fraction, cfg.seed, cfg.subset)
        save_splits(splits, out_dir)
    sizes = ", ".join(f"{name} {len(s.X)}" for name, s in splits.items())
    stage.log("prepare", f"{sizes} examples into {out_dir}")


if __name__ == "__main__":
    stage.run("prepare", main, sys.argv[1:])
