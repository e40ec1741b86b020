"""fetch: the four Fashion-MNIST IDX files, SHA-256 verified, into data/raw/.

Usage: python -m stages.fetch OUT_DIR
"""

from pathlib import Path

from fmnist_mlp import stage
from fmnist_mlp.config import FetchConfig, load_section
from fmnist_mlp.fetch import fetch_all


def main(out_dir: Path) -> None:
    cfg = load_section(FetchConfig)
    origins = fetch_all(out_dir, cfg.source_dir and Path(cfg.source_dir),
                        cfg.package_dir and Path(cfg.package_dir), cfg.mirror_url, cfg.timeout)
    stage.log("fetch", f"verified {len(origins)} files into {out_dir}")


if __name__ == "__main__":
    stage.run(main, __doc__)
