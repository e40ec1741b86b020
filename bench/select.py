"""The select stage before and after a change, side by side: ``python -m stages.select_best``
run in a git worktree of REV (default: fb80615, before the grid's factorial model) and in this
tree, interleaved REPEATS times on this workspace's search items (``dvc repro search`` first),
each writing to its own temporary directory; the fastest run of each counts (timeit's
convention). Each run is a new process, imports included, as under ``dvc repro``.

Usage: python -m bench.select [REV] [REPEATS]
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fmnist_mlp.core.numerics import outer_environ

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("metrics.json", "report.json", "results.csv", "results.png", "best", "overlay.csv",
           "effects.json", "effects.csv")


def run_select(tree: Path, out: Path, outputs: int) -> float:
    """Seconds of one select run in ``tree`` (its code and params.yaml) on this workspace's
    items, the first ``outputs`` outputs written under ``out``."""
    args = [str(ROOT / "models/search"), str(ROOT / "plots/search"),
            *(str(out / name) for name in OUTPUTS[:outputs])]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stages.select_best", *args], cwd=tree, check=True,
                   env=outer_environ, capture_output=True)
    return time.perf_counter() - start


def main(rev: str = "fb80615", repeats: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), rev], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            times = {"before": [], "now": []}
            for i in range(int(repeats)):
                times["before"].append(run_select(old, Path(tmp) / f"b{i}", 6))
                times["now"].append(run_select(ROOT, Path(tmp) / f"n{i}", 8))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT,
                           check=True)
    before, now = min(times["before"]), min(times["now"])
    print(f"select at {rev}: {before:.2f} s; now: {now:.2f} s (fastest of {repeats}); "
          f"ratio {now / before:.2f}, +{now - before:.2f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
