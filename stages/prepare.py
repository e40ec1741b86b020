"""prepare: normalise, one-hot encode and split train/val; test untouched.

Usage: python -m stages.prepare RAW_DIR OUT_DIR
"""

if not __package__:  # run as a file, `python stages/prepare.py` as in DVC's tutorials
    import sys
    sys.path[0] += "/.."  # the repository, not stages/
    from stages import run_as_module
    run_as_module(__file__)

from pathlib import Path

from fmnist_mlp import stage
from fmnist_mlp.params import load_section
from fmnist_mlp.prepare import PrepareConfig, prepare, save_splits


def main(raw_dir: Path, out_dir: Path) -> None:
    cfg = load_section(PrepareConfig)
    with stage.outputs(out_dir):
        splits = prepare(raw_dir, cfg.scale, cfg.offset, cfg.val_fraction, cfg.seed, cfg.subset)
        save_splits(splits, out_dir)
    sizes = ", ".join(f"{name} {len(s.X)}" for name, s in splits.items())
    stage.log("prepare", f"{sizes} examples into {out_dir}")


if __name__ == "__main__":
    stage.run(main, __doc__)
