"""fetch: the four Fashion-MNIST IDX files, SHA-256 verified, into OUT_DIR (data/raw/)."""

import fmnist_mlp.core.startup  # noqa: F401  (first: the numeric profile before numpy)

from pathlib import Path

from fmnist_mlp.core import cli
from fmnist_mlp.core.params import load_section
from fmnist_mlp.raw.fetch import FetchConfig, fetch_all


def main(out_dir: Path) -> None:
    cfg = load_section(FetchConfig)
    origins = fetch_all(out_dir, cfg.source_dir and Path(cfg.source_dir),
                        cfg.package_dir and Path(cfg.package_dir), cfg.mirror_url)
    cli.log("fetch", f"verified {len(origins)} files into {out_dir}")


if __name__ == "__main__":
    cli.run(main, __doc__)
