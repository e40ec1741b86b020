"""How the search's bookkeeping grows with the grid: tiny grids of 12, 60 and 240 items, each
through `make repro`'s engine (`python -m fmnist_mlp.engine.repro`, every core, run in this
process) in a fresh copy of the project with a DVC cache of its own, on this machine.

An item: 1 to 3 hidden layers of 8 + k units, 3 000 training images, one epoch, one seed, so
that an item's time is mostly what it costs besides its training. Per size it prints: the
engine's wall time; seconds per item outside training (the items' phase times its workers over
the items, minus the mean training time the stages record); the return step (every item
restored from the run-cache and recorded in dvc.lock, fmnist_mlp.engine.dvc_state.bring_home)
per item; a no-op `dvc repro`; `dvc status`; and `dvc plots show`'s page (bytes, charts). The last
line reads `growth G`: the return step's seconds per item at the largest size over the smallest
(1.0: linear; DVC's own `dvc repro` rewrites dvc.lock once a stage, which grows as the square).
The items' phase and the return step are timed here, around the engine's own steps
(`cluster.run_items`, `dvc_state.bring_home`): the engine writes no timing of its own.
Usage: python -m bench.grid [SIZE ...]   (default 12 60 240; about 25 min on 2 cores)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest.mock import patch

import yaml

from fmnist_mlp.engine import cluster, dvc_state, repro
from fmnist_mlp.engine.dvc_state import working_tree

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


def engine(repo: Path, items: int) -> dict[str, float]:
    """`make repro`'s engine in ``repo`` with a worker per core (``default_jobs``), in this
    process, the output of the commands it starts on stderr: its wall seconds; the items'
    phase's and its workers; the training seconds the items' stages recorded; the return
    step's."""
    spent, jobs = {}, cluster.default_jobs(items)
    with (patch.object(cluster, "run_items", timing(cluster.run_items, spent, "items")),
          patch.object(dvc_state, "bring_home", timing(dvc_state.bring_home, spent, "return")),
          contextlib.chdir(repo), stdout_on_stderr()):
        start = time.perf_counter()
        code = repro.main(["--jobs", str(jobs)])
        wall = time.perf_counter() - start
    if code:
        raise SystemExit(f"bench.grid: the engine exited {code} in {repo} (its lines above)")
    (items_s, results), (return_s, _) = spent["items"], spent["return"]
    assert len(results) == items, results  # every item on a worker
    return {"wall": wall, "items": items_s, "workers": jobs, "return": return_s,
            "train": sum(result.train_seconds for result in results)}


def timing(step, spent: dict, name: str):
    """``step``, each call's wall seconds and result kept in ``spent[name]``."""

    def timed_step(*args, **kwargs):
        start = time.perf_counter()
        result = step(*args, **kwargs)
        spent[name] = (time.perf_counter() - start, result)
        return result

    return timed_step


@contextlib.contextmanager
def stdout_on_stderr():
    """File descriptor 1 on stderr while it lasts: what the engine's commands print goes there,
    and stdout keeps the table alone."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def measure(items: int, base: Path) -> dict:
    repo = project(base / f"grid-{items}", items)
    timed(repo, "dvc", "cache", "dir", "--local", str(base / f"cache-{items}"))
    spent = engine(repo, items)
    noop, said = timed(repo, "dvc", "repro")
    assert "Running stage" not in said, said
    status, _ = timed(repo, "dvc", "status")
    plots, _ = timed(repo, "dvc", "plots", "show", "-o", str(base / f"plots-{items}"))
    page = (base / f"plots-{items}" / "index.html").read_text()
    shutil.rmtree(repo)  # the next size's copy, not this one's outputs, on the disk
    return {"items": items, "wall": spent["wall"],
            "outside": (spent["items"] * spent["workers"] - spent["train"]) / items,
            "return": spent["return"], "noop": noop, "status": status, "plots": plots,
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
