"""fetch: the four Fashion-MNIST IDX files, SHA-256 verified, into data/raw/.

Usage: python -m stages.fetch OUT_DIR
"""

from pathlib import Path

from fmnist_mlp import stage
from fmnist_mlp.config import FetchConfig, load_section
from fmnist_mlp.fetch import fetch_all


def main(out_dir: Path) -> None:
    cfg = load_section(FetchConfig)
    dirs = [Path(d) for d in (cfg.source_dir, cfg.package_dir) if d]
    origins = fetch_all(Path(out_dir), dirs, cfg.mirror_url, cfg.timeout)
    stage.log("fetch", f"verified {len(origins)} files into {out_dir}")


if __name__ == "__main__":
    stage.run(main, __doc__)
