"""The default search path against the one it replaced, side by side in one run on this machine.

Both sides train the same 4 items (3 layers x 30 and 40 units x batch 64 and 128, lr 0.05,
l2 0.001) with the committed seeds and epochs on the real data/prepared, each item in a process
of its own as under `dvc repro` (TensorFlow starts once per item):
- before: the items one after another, 50 steps per execution (the former search params);
- now: `make repro`'s way, as many items at once as this machine has cores
  (fmnist_mlp.engine.cluster.default_jobs), a whole epoch per execution.
It also checks that both sides wrote the same metrics.json for every item, byte for byte: neither
the execution size nor running side by side changes a bit. DVC's own overhead (a worker's copy,
`dvc repro --single-item`) is outside both sides. Needs data/prepared (`dvc repro prepare`).
Usage: python -m bench.search   (the last line reads `ratio R`, now / before)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fmnist_mlp.core.params import load_section
from fmnist_mlp.grid.search import SearchConfig, Trial

ROOT = Path(__file__).resolve().parents[1]
ITEMS = [Trial(3, units, 0.05, batch, 0.001, "relu") for units in (30, 40) for batch in (64, 128)]
BEFORE_STEPS = 50  # the former search.steps_per_execution


def worker(out: str, units: int, batch: int, steps: int) -> None:
    """One item in this process, as the search stage trains it."""
    from fmnist_mlp.core.data import load_split
    from fmnist_mlp.keras_search.train import train_item

    cfg = load_section(SearchConfig, ROOT / "params.yaml")
    trial = Trial(3, units, 0.05, batch, 0.001, "relu")
    prepared = ROOT / "data" / "prepared"
    train, val = load_split(prepared, "train"), load_split(prepared, "val")
    train_item(trial, train, val, cfg.epochs, cfg.seeds, Path(out) / trial.name,
               Path(out) / f"{trial.name}.csv", steps_per_execution=steps or None)


def side(out: Path, jobs: int, steps: int) -> float:
    """Wall seconds of the 4 items, ``jobs`` processes at a time."""
    start = time.perf_counter()
    running: list[subprocess.Popen] = []
    for trial in ITEMS:
        while len(running) >= jobs:
            running.pop(0).wait()
        running.append(subprocess.Popen(
            [sys.executable, "-m", "bench.search", "--worker", str(out), str(trial.hidden_units),
             str(trial.batch_size), str(steps)], cwd=ROOT, stderr=subprocess.DEVNULL))
    for p in running:
        if p.wait() != 0:
            raise SystemExit(f"bench.search: an item failed (exit {p.returncode})")
    return time.perf_counter() - start


def main() -> None:
    from fmnist_mlp.core.resources import cores
    from fmnist_mlp.engine.cluster import default_jobs

    jobs = default_jobs(len(ITEMS))
    cfg = load_section(SearchConfig, ROOT / "params.yaml")
    with tempfile.TemporaryDirectory() as before_dir, tempfile.TemporaryDirectory() as now_dir:
        before = side(Path(before_dir), 1, BEFORE_STEPS)
        now = side(Path(now_dir), jobs, 0)
        same = all((Path(before_dir) / t.name / "metrics.json").read_bytes()
                   == (Path(now_dir) / t.name / "metrics.json").read_bytes() for t in ITEMS)
    print(f"{len(ITEMS)} items x seeds {list(cfg.seeds)} x epochs {list(cfg.epochs)}, "
          f"{cores()} cores")
    print(f"before: one item at a time, {BEFORE_STEPS} steps per execution: {before:.1f} s")
    print(f"now: {jobs} items at a time, a whole epoch per execution: {now:.1f} s")
    print(f"metrics.json identical on both sides: {same}")
    print(f"ratio {now / before:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], *map(int, sys.argv[3:6]))
    else:
        main()
