"""`dvc repro` on every core: the search's matrix items side by side, then the whole pipeline.

Usage: python -m fmnist_mlp.engine.repro [-j N]   (`make repro`; N: default every core of this machine)

DVC runs one stage at a time in a workspace (its lock), and the search's matrix items are
independent. So, as zincware/dask4dvc does with DVC's own temporary experiment directories:
1. `dvc repro prepare` here (fetch and prepare, which every item needs);
2. the items that `dvc status` finds stale are handed to N workers; each worker has a copy of
   this working tree (uncommitted edits and params.yaml included) under .dvc/tmp/repro/ whose
   DVC cache is this workspace's cache, and runs `dvc repro --single-item search@<item>` there,
   one item after another. DVC records each finished item in the shared run-cache;
3. a plain `dvc repro` here restores every item from the run-cache (none retrained) and runs
   select, evaluate and landscape: dvc.lock and every output are what a serial `dvc repro`
   writes. A failed item is named, and step 3 reruns it to show its error;
4. dvc.lock loses the stages dvc.yaml no longer defines (DVC keeps them: a renamed matrix item
   would stay recorded under its old name), each named.
Ctrl-C stops every worker at once; a worker's unfinished item is never in the run-cache, so
nothing is left that a later run could take for a result. With one core (or one stale item) it
is a plain `dvc repro`. The workers' copies are removed when they finish.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from fmnist_mlp.core import runner
from fmnist_mlp.engine.cluster import dvc, stage_env
from fmnist_mlp.engine.verify import pipeline_stages

MATRIX = "search"  # the matrix stage whose items run side by side
UPSTREAM = "prepare"  # what every item depends on, run here first
WORKDIR = Path(".dvc/tmp/repro")  # the workers' copies (ignored by git and by DVC)
WORKER_MEMORY = 1.5 * 2**30  # bytes one item's process takes at most (TensorFlow, the data)
LINKED = ("data/prepared",)  # big inputs of the items: hard links into the copies, not copies


class ReproError(Exception):
    """A failure said in one line."""


def default_jobs(stale: int) -> int:
    """Every core, as many as memory allows, no more than there are items."""
    memory = runner.available_memory()
    by_memory = int(memory // WORKER_MEMORY) if memory else stale
    return max(1, min(runner.cores(), stale, by_memory))


def stale_items(root: Path) -> list[str]:
    """The matrix items that `dvc repro` would run or restore, in dvc.yaml's order."""
    result = subprocess.run(dvc("status", "--json"), cwd=root, capture_output=True, text=True,
                            env=stage_env())
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        raise ReproError(f"`dvc status` failed: {lines[-1]}")
    return [name for name in json.loads(result.stdout or "{}")
            if name.startswith(f"{MATRIX}@")]


def working_tree(root: Path) -> list[str]:
    """The files a fresh clone with these edits would have: git's tracked and not-ignored
    files that exist."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=root, check=True, capture_output=True,
                            text=True).stdout
    return [name for name in dict.fromkeys(listed.split("\0")) if name and
            (root / name).is_file()]


def make_copy(root: Path, dest: Path) -> Path:
    """A worker's copy of the working tree whose DVC cache is the workspace's."""
    for name in working_tree(root):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest / name)
    for name in LINKED:
        for source in sorted((root / name).rglob("*")):
            target = dest / source.relative_to(root)
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    cache = (root / ".dvc" / "cache").resolve()
    subprocess.run(dvc("cache", "dir", "--local", str(cache)), cwd=dest, check=True,
                   capture_output=True)
    return dest


class Workers:
    """N copies, each running one item at a time; ``run`` returns {item: error or None}."""

    def __init__(self, root: Path, jobs: int, progress):
        self.root, self.jobs, self.progress = root, jobs, progress
        self.processes: dict[int, subprocess.Popen] = {}
        self.results: dict[str, str | None] = {}
        self.trained = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self, items: list[str]) -> dict[str, str | None]:
        todo: queue.Queue[str] = queue.Queue()
        for item in items:
            todo.put(item)
        base = self.root / WORKDIR
        shutil.rmtree(base, ignore_errors=True)  # what a killed run left
        base.mkdir(parents=True)
        threads = [threading.Thread(target=self.worker, args=(k, base / f"w{k}", todo),
                                    daemon=True) for k in range(self.jobs)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            self.stop()
            raise
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return self.results

    def worker(self, k: int, copy: Path, todo: queue.Queue) -> None:
        try:
            make_copy(self.root, copy)
        except (OSError, subprocess.CalledProcessError) as e:
            with self.lock:
                while not todo.empty():
                    self.results[todo.get()] = f"worker {k} could not copy the workspace: {e}"
            return
        log_dir = self.root / "logs" / "repro"
        log_dir.mkdir(parents=True, exist_ok=True)
        while not self.stopping.is_set():
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            log = log_dir / f"{item.replace('@', '-')}.log"
            with log.open("w") as out:
                process = subprocess.Popen(dvc("repro", "--single-item", item), cwd=copy,
                                           stdout=out, stderr=subprocess.STDOUT,
                                           env=stage_env(), start_new_session=True)
                with self.lock:
                    self.processes[k] = process
                code = process.wait()
                with self.lock:
                    self.processes.pop(k, None)
            if self.stopping.is_set():
                return
            self.report(item, code, log.read_text(errors="replace"), log)

    def report(self, item: str, code: int, output: str, log: Path) -> None:
        lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
        with self.lock:
            if code == 0:
                self.results[item] = None
                trained = any(ln.startswith("Running stage") for ln in lines)
                self.trained += trained
                said = next((ln for ln in lines if ln.startswith(f"{MATRIX}: ")), None)
                self.progress.write(said if trained and said else
                                    f"{item}: restored from the run-cache")
            else:
                error = next((ln for ln in lines if "error" in ln.lower()), lines[-1:] or [""])
                self.results[item] = f"{error} (log: {log})"
            self.progress.update(1)

    def stop(self) -> None:
        """Ctrl-C: every worker's process group gets SIGINT, then SIGKILL after 10 s."""
        self.stopping.set()
        with self.lock:
            processes = list(self.processes.values())
        for p in processes:
            with_group(p, signal.SIGINT)
        for p in processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                with_group(p, signal.SIGKILL)
                p.wait()


def with_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def prune_lock(text: str, stages: set[str]) -> tuple[str, list[str]]:
    """dvc.lock's text without the stages not in ``stages``, and their names; every other line
    as it was."""
    header, *blocks = re.split(r"(?m)^(?=  \S)", text)  # the header, then one per stage
    named = [(block.split(":", 1)[0].strip(), block) for block in blocks]
    kept = [block for name, block in named if name in stages]
    return "".join([header, *kept]), [name for name, _ in named if name not in stages]


def prune_dead_stages(root: Path) -> None:
    lock = root / "dvc.lock"
    if not lock.is_file():
        return
    text, dead = prune_lock(lock.read_text(), pipeline_stages(root))
    if dead:
        lock.write_text(text)
        print(f"repro: removed {len(dead)} stage(s) that dvc.yaml no longer defines from "
              f"dvc.lock: {', '.join(dead)}", flush=True)


def run_here(root: Path, *args: str) -> int:
    """A dvc command in the workspace, its output on this terminal."""
    return subprocess.run(dvc(*args), cwd=root, env=stage_env()).returncode


def parallel_items(root: Path, jobs: int | None) -> None:
    from tqdm import tqdm

    items = stale_items(root)
    jobs = jobs or default_jobs(len(items))
    jobs = min(jobs, len(items))
    if jobs < 2:
        return  # one core or one item: the plain `dvc repro` below runs it
    print(f"repro: {len(items)} {MATRIX} items on {jobs} workers (logs/repro/)", flush=True)
    with tqdm(total=len(items), desc=f"{MATRIX} items", unit="item", dynamic_ncols=True) as bar:
        workers = Workers(root, jobs, bar)
        results = workers.run(items)
    failed = {item: error for item, error in results.items() if error}
    print(f"repro: {len(results) - len(failed)} of {len(items)} items done ({workers.trained} "
          f"trained, {len(results) - len(failed) - workers.trained} restored from the "
          f"run-cache)" + ("; failed: " + "; ".join(f"{i}: {e}" for i, e in failed.items())
                           if failed else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmnist_mlp.engine.repro",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="workers for the search items (default: every core)")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs: expected at least 1, got {args.jobs}")
    root = Path.cwd()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores it
    try:
        code = run_here(root, "repro", UPSTREAM)
        if code != 0:
            return code
        parallel_items(root, args.jobs)
        code = run_here(root, "repro")
        if code == 0:
            prune_dead_stages(root)
        return code
    except ReproError as e:
        print(f"repro: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("repro: interrupted; every worker stopped, no unfinished item recorded",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
