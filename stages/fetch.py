"""fetch: the four Fashion-MNIST IDX files, SHA-256 verified, into data/raw/.

Usage: python -m stages.fetch OUT_DIR
"""

if not __package__:  # run as a file, `python stages/fetch.py` as in DVC's tutorials
    import sys
    sys.path[0] += "/.."  # the repository, not stages/
    from stages import run_as_module
    run_as_module(__file__)

from pathlib import Path

from fmnist_mlp import stage
from fmnist_mlp.fetch import FetchConfig, fetch_all
from fmnist_mlp.params import load_section


def main(out_dir: Path) -> None:
    cfg = load_section(FetchConfig)
    origins = fetch_all(out_dir, cfg.source_dir and Path(cfg.source_dir),
                        cfg.package_dir and Path(cfg.package_dir), cfg.mirror_url)
    stage.log("fetch", f"verified {len(origins)} files into {out_dir}")


if __name__ == "__main__":
    stage.run(main, __doc__)
