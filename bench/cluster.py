"""The whole pipeline through the engine's clone way (a local Dask cluster of 2 workers, a DVC
remote) against a plain `dvc repro`, side by side in one run on this machine.

Each side is a fresh clone of this repository's HEAD with its own DVC cache, on the seed's grid
(12 items, epochs 20, 40) and the seeds given (default: 0 alone, the seed's protocol; the
committed search.seeds [0, 1, 2] triples the time). The cluster side pushes to and pulls from a
DVC remote in a temporary directory. Both end with the same dvc.lock (checked).
Usage: python -m bench.cluster [SEED ...]
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from fmnist_mlp.engine.worker import stage_env

ROOT = Path(__file__).resolve().parents[1]


def clone(dest: Path, seeds: list[int]) -> Path:
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["search"]["seeds"] = seeds
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost",
                    "commit", "--quiet", "-am", "bench seeds"], cwd=dest, check=True)
    return dest


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, env=stage_env(), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(seeds: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plain, spread = clone(tmp / "plain", seeds), clone(tmp / "cluster", seeds)
        dvc = [sys.executable, "-m", "dvc"]
        subprocess.run([*dvc, "remote", "add", "--local", "bench", str(tmp / "remote")],
                       cwd=spread, check=True)
        plain_s = timed([*dvc, "repro"], plain)
        cluster_s = timed([sys.executable, "-m", "fmnist_mlp.engine.repro", "--remote", "bench",
                           "--jobs", "2", "--workdir", str(tmp / "work")], spread)
        same = (plain / "dvc.lock").read_text() == (spread / "dvc.lock").read_text()
    print(f"seed grid, 12 items x epochs 20, 40, seeds {seeds}, whole pipeline from a fresh clone")
    print(f"plain dvc repro: {plain_s:.1f} s; local Dask cluster, 2 workers x 1 thread: "
          f"{cluster_s:.1f} s")
    print(f"wall-time ratio cluster / plain: {cluster_s / plain_s:.2f}; same dvc.lock: {same}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0])
