"""How the search's bookkeeping grows with the grid: tiny grids of 12, 60 and 240 items, each
through `make repro`'s engine (fmnist_mlp.engine.repro, every core) in a fresh copy of the
project with a DVC cache of its own, on this machine.

An item: 1 to 3 hidden layers of 8 + k units, 3 000 training images, one epoch, one seed, so
that an item's time is mostly what it costs besides its training. Per size it prints: the
engine's wall time; seconds per item outside training (the items' phase times its workers over
the items, minus the mean training time the stages record); the return step (every item
restored from the run-cache and recorded in dvc.lock, fmnist_mlp.engine.repro.bring_home) per
item; a no-op `dvc repro`; `dvc status`; and `dvc plots show`'s page (bytes, charts). The last
line reads `growth G`: the return step's seconds per item at the largest size over the smallest
(1.0: linear; DVC's own `dvc repro` rewrites dvc.lock once a stage, which grows as the square).
Usage: python -m bench.grid [SIZE ...]   (default 12 60 240; about 25 min on 2 cores)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from fmnist_mlp.engine.repro import working_tree

ROOT = Path(__file__).resolve().parents[1]
SIZES = (12, 60, 240)
TINY = dict(  # the pipeline around the items, as small as the stages allow
    prepare={"subset": 3000},
    scratch={"epochs": 1, "learning_rate": 0.1},
    search={"hidden_layers": [1, 2, 3], "learning_rate": [0.05], "batch_size": [256],
            "l2": [0.001], "activation": ["relu"], "epochs": [1], "seeds": [0]},
    landscape={"grid": 8, "samples": 200},
)


def project(dest: Path, items: int) -> Path:
    """A copy of the working tree (with `make setup`'s local config) whose grid has ``items``."""
    for name in [*working_tree(ROOT), ".dvc/config.local", ".dvc/plots_page.html"]:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    params["search"]["hidden_units"] = [8 + k for k in range(items // 3)]
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def timed(repo: Path, *argv: str) -> tuple[float, str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"bench.grid: `{' '.join(argv)}` failed in {repo}:\n"
                         f"{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - start, done.stdout


def measure(items: int, base: Path) -> dict:
    repo = project(base / f"grid-{items}", items)
    timed(repo, "dvc", "cache", "dir", "--local", str(base / f"cache-{items}"))
    wall, _ = timed(repo, sys.executable, "-m", "fmnist_mlp.engine.repro")
    spent = json.loads((repo / "timings/repro.json").read_text())
    assert spent["ran"] == items, spent
    noop, said = timed(repo, "dvc", "repro")
    assert "Running stage" not in said, said
    status, _ = timed(repo, "dvc", "status")
    plots, _ = timed(repo, "dvc", "plots", "show", "-o", str(base / f"plots-{items}"))
    page = (base / f"plots-{items}" / "index.html").read_text()
    shutil.rmtree(repo)  # the next size's copy, not this one's outputs, on the disk
    return {"items": items, "wall": wall,
            "outside": (spent["items"] * spent["workers"] - spent["train"]) / items,
            "return": spent["return_step"], "noop": noop, "status": status, "plots": plots,
            "page": len(page), "charts": len(re.findall(r"vegaEmbed\(", page))}


def main() -> None:
    sizes = [int(n) for n in sys.argv[1:]] or list(SIZES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp:
        for items in sizes:
            rows.append(measure(items, Path(tmp)))
            print(f"{items} items done", file=sys.stderr, flush=True)
    print("| items | engine wall | s/item outside training | return step (s/item) | no-op "
          "`dvc repro` | `dvc status` | `dvc plots show` | page (KiB, charts) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['items']} | {r['wall']:.0f} s | {r['outside']:.2f} s | {r['return']:.1f} s "
              f"({r['return'] / r['items']:.3f}) | {r['noop']:.1f} s | {r['status']:.1f} s | "
              f"{r['plots']:.1f} s | {r['page'] / 1024:.0f}, {r['charts']} |")
    first, last = rows[0], rows[-1]
    print(f"growth {(last['return'] / last['items']) / (first['return'] / first['items']):.2f}")


if __name__ == "__main__":
    main()
