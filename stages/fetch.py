"""fetch: the four Fashion-MNIST IDX files, SHA-256 verified, into data/raw/.

Usage: python stages/fetch.py OUT_DIR
"""

import sys
from pathlib import Path

from fmnist_mlp import stage
from fmnist_mlp.config import FetchConfig, load_section
from fmnist_mlp.fetch import fetch_all


def main(argv: list[str]) -> None:
    (out_dir,) = argv
    cfg = load_section(FetchConfig)
    dirs = [Path(d) for d in (cfg.source_dir, cfg.package_dir) if d]
    origins = fetch_all(Path(out_dir), dirs, cfg.mirror_url, cfg.timeout)
    stage.log("fetch", f"verified {len(origins)} files into {out_dir}")


if __name__ == "__main__":
    stage.run("fetch", main, sys.argv[1:])
