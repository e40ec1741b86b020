"""prepare: normalise, one-hot encode and split train/val; test untouched."""

import fmnist_mlp.core.startup  # noqa: F401  (first: the numeric profile before numpy)

from pathlib import Path

from fmnist_mlp.core import cli, files
from fmnist_mlp.core.params import load_section
from fmnist_mlp.dataset.prepare import PrepareConfig, prepare, save_splits


def main(raw_dir: Path, out_dir: Path) -> None:
    cfg = load_section(PrepareConfig)
    with files.outputs(out_dir):
        splits = prepare(raw_dir, cfg.scale, cfg.offset, cfg.val_fraction, cfg.seed, cfg.subset)
        save_splits(splits, out_dir)
    sizes = ", ".join(f"{name} {len(s.X)}" for name, s in splits.items())
    cli.log("prepare", f"{sizes} examples into {out_dir}")


if __name__ == "__main__":
    cli.run(main, __doc__)
