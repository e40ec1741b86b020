"""The three-seed search against the single-seed one, side by side in one run on this machine.

Each search item runs as `dvc repro` runs it: `python -m stages.search ...` in a process of its
own (TensorFlow starts once per item), on the real data/prepared, with the seed's run lengths
(epochs 20, 40) but a reduced grid: 3 layers x 30 and 40 units, batch 128. First with
search.seeds [0] (the seed's protocol: today's single-seed search), then with [0, 1, 2]. Also
checks that seed 0's figures are the same in both (the single-seed path is the first seed's run).
Needs data/prepared (`dvc repro prepare`). Usage: python -m bench.search
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from fmnist_mlp.grid import AXES, Trial, flag

ROOT = Path(__file__).resolve().parents[1]
ITEMS = [Trial(3, 30, 0.05, 128, 0.001), Trial(3, 40, 0.05, 128, 0.001)]


def run_search(work: Path, seeds: list[int]) -> tuple[float, dict]:
    """Wall seconds of every item's stage process, and each item's metrics.json."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["search"]["seeds"] = seeds
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    for trial in ITEMS:
        flags = [part for axis in AXES for part in (flag(axis), str(getattr(trial, axis)))]
        subprocess.run([sys.executable, "-m", "stages.search", str(ROOT / "data/prepared"),
                        "models", "curves", *flags], cwd=work, check=True,
                       stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return seconds, {t.name: json.loads((work / "models" / t.name / "metrics.json").read_text())
                     for t in ITEMS}


def main() -> None:
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as three:
        for work in (Path(one), Path(three)):
            for name in ("stages", "fmnist_mlp"):
                (work / name).symlink_to(ROOT / name)
        single_s, single = run_search(Path(one), [0])
        multi_s, multi = run_search(Path(three), [0, 1, 2])
    same = all(single[name]["seeds"]["0"] == multi[name]["seeds"]["0"] for name in single)
    print(f"{len(ITEMS)} items x epochs 20, 40, each item its own stage process")
    print(f"single seed [0]: {single_s:.1f} s; seeds [0, 1, 2]: {multi_s:.1f} s")
    print(f"wall-time ratio three-seed / single-seed: {multi_s / single_s:.2f} "
          f"(3.00 would be no saving at all); seed 0 identical in both: {same}")


if __name__ == "__main__":
    main()
