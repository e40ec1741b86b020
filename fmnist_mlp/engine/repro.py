"""`dvc repro` with the search's matrix items side by side on a Dask cluster: every core of this
machine (`make repro`), or the workers of a scheduler (`make search-cluster`).

1. `dvc repro prepare` here: fetch and prepare, which every item needs.
2. Each item that `dvc status` finds stale is one Dask task: `dvc repro --single-item <item>` in
   its worker's workspace, made once per worker, in one of two ways:
   - ``Copy`` (default): a copy of this working tree, uncommitted edits included, under
     .dvc/tmp/repro/, whose DVC cache is this workspace's: a finished item is in the run-cache;
   - ``Clone`` (``--remote NAME``): a clone of this commit plus params.yaml as it is, on the
     worker's machine, sharing a DVC remote: `dvc repro --pull`, then `dvc push --run-cache`.
   Without ``--scheduler`` the cluster is local: one worker thread per core (bounded by memory
   and by the items), each waiting on its own `dvc` process; nothing listens on a network.
3. `dvc repro` here (``--pull`` with a remote) restores every item from the run-cache and runs
   select, evaluate and landscape: dvc.lock and every output are what a serial `dvc repro`
   writes. dvc.lock then loses the stages dvc.yaml no longer defines (a renamed matrix item).
A failed item is named with its log (logs/repro/<item>.log) and nothing is assembled. Ctrl-C, or
the death of this process, stops every item's `dvc` and stage at once (the stage scripts die
with their parent, ``fmnist_mlp.core.startup``); DVC records an item in the run-cache only once
it has finished, so nothing unfinished can be taken for a result. One run per workspace at once.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MATRIX = "search"  # the matrix stage whose items run side by side
SENT = ("params.yaml", "dvc.lock")  # what a clone gets as it is here, not as committed
UPSTREAM = ("fetch", "prepare")  # what every item needs, run here first
TMP = Path(".dvc/tmp")  # ignored by git and by DVC
WORKDIR = TMP / "repro"  # the local workers' copies
LOGS = Path("logs/repro")  # one log per item, new each run
WORKER_MEMORY = 1.5 * 2**30  # bytes one item's process takes at most (TensorFlow, the data)
LINKED = ("data/prepared",)  # the items' big input: hard links in a copy
BIG = 2**20  # bytes above which a working-tree file is hard-linked into a copy, not copied


class EngineError(Exception):
    """A failure of the run, said in one line."""


# What runs on a worker (``run_item`` and the two ways) uses only the standard library and
# Dask: for a remote scheduler this module is pickled by value, so the workers need no copy of
# the project to start a task.


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def stage_env() -> dict:
    """This Python's venv first on PATH: DVC runs the stages' `python`."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def check(argv: list[str], cwd: Path) -> str:
    """Run a command to its end; its output, or EngineError with its last line."""
    result = subprocess.run(argv, cwd=cwd, env=stage_env(), capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr + result.stdout).strip().splitlines() or ["(no output)"]
        command = " ".join([Path(argv[0]).name, *argv[1:6]])
        raise EngineError(f"`{command}` exited {result.returncode}: {lines[-1].strip()}")
    return result.stdout


def working_tree(root: Path) -> list[str]:
    """The files a fresh clone with this tree's edits would have: git's tracked and not-ignored
    files that exist."""
    listed = check(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], root)
    return [name for name in dict.fromkeys(listed.split("\0")) if (root / name).is_file()]


def link_or_copy(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def reset(path: Path) -> None:
    """Remove what ``path`` is (a directory, a file, a symlink: what a crashed run left)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


@dataclass(frozen=True)
class Copy:
    """This machine: a copy of the working tree whose DVC cache is the workspace's."""

    root: str
    pull = ()

    def workspace(self, worker: str) -> Path:
        root, dest = Path(self.root), Path(self.root) / WORKDIR / worker
        if (dest / ".dvc").is_dir():
            return dest
        for name in working_tree(root):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            big = (root / name).stat().st_size > BIG  # read-only inputs: no need for a copy
            (link_or_copy if big else shutil.copy2)(root / name, dest / name)
        for name in LINKED:
            shutil.copytree(root / name, dest / name, copy_function=link_or_copy)
        check(["git", "init", "-q"], dest)
        check(dvc("cache", "dir", "--local", str((root / ".dvc" / "cache").resolve())), dest)
        return dest

    def send(self, workspace: Path, item: str) -> None:
        """Nothing to send: the item is in the shared cache and run-cache."""


@dataclass(frozen=True)
class Clone:
    """A worker anywhere: a clone of ``commit`` with ``files`` (params.yaml and dvc.lock as they
    are here), sharing the DVC remote ``remote`` (at ``url``); one DVC cache per machine under
    ``workdir``."""

    repo: str
    commit: str
    files: tuple[tuple[str, str], ...]
    remote: str
    url: str
    workdir: str
    pull = ("--pull",)

    def workspace(self, worker: str) -> Path:
        run = hashlib.sha256(repr((self.commit, self.files)).encode()).hexdigest()[:12]
        base, dest = Path(self.workdir), Path(self.workdir) / f"{run}-{worker}"
        if (dest / ".dvc").is_dir():
            return dest
        base.mkdir(parents=True, exist_ok=True)
        reset(dest)
        check(["git", "clone", "--quiet", "--no-checkout", self.repo, str(dest)], base)
        check(["git", "checkout", "--quiet", self.commit], dest)
        for name, text in self.files:
            (dest / name).write_text(text)
        check(dvc("remote", "add", "--local", "--force", "--default", self.remote, self.url), dest)
        check(dvc("cache", "dir", "--local", str(base / "dvc-cache")), dest)
        return dest

    def send(self, workspace: Path, item: str) -> None:
        check(dvc("push", "--remote", self.remote, item), workspace)
        check(dvc("push", "--remote", self.remote, "--run-cache"), workspace)


def run_item(item: str, way: Copy | Clone, stop: str, log: str | None) -> dict:
    """One Dask task: ``item`` in this worker's workspace. Returns the item, its error (None if
    it succeeded), whether it trained (False: restored from a run-cache) and, without ``log``,
    its output. The `dvc` process dies with this worker (PR_SET_PDEATHSIG through setpriv),
    and its whole process group when the event ``stop`` is set or when it ends."""
    from distributed import Event, get_worker

    if Event(stop).is_set():
        return {"item": item, "error": "stopped", "trained": False}
    workspace = way.workspace("".join(c if c.isalnum() else "-" for c in str(get_worker().name)))
    timings = workspace / "timings"  # a stage writes its timing only when it ran
    shutil.rmtree(timings, ignore_errors=True)
    path = Path(log) if log else workspace / "item.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a new file: nothing of an earlier run writes into it
    guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    with path.open("w") as out:
        process = subprocess.Popen([*guard, *dvc("repro", "--single-item", *way.pull, item)],
                                   cwd=workspace, stdout=out, stderr=subprocess.STDOUT,
                                   env=stage_env(), start_new_session=True)
        try:
            code = None
            while code is None:
                try:
                    code = process.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    if Event(stop).is_set():
                        os.killpg(process.pid, signal.SIGKILL)
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # what dvc left behind: its stage
            except ProcessLookupError:
                pass
    output = path.read_text(errors="replace")
    error = None
    if code < 0:
        error = f"dvc was killed by {signal.Signals(-code).name}"
    elif code > 0:
        said = [ln for ln in output.splitlines() if ln.startswith(f"{MATRIX}: error:")]
        error = said[-1] if said else f"dvc exited {code}"
    else:
        way.send(workspace, item)
    return {"item": item, "error": error, "trained": timings.is_dir() and any(timings.iterdir()),
            "output": None if log else output}


# The driver, on this machine.


def default_jobs(items: int) -> int:
    """Every core, as many as memory allows, no more than there are items."""
    from fmnist_mlp.core.runner import available_memory, cores

    memory = available_memory()
    by_memory = int(memory // WORKER_MEMORY) if memory else items
    return max(1, min(cores(), items, by_memory))


def dvc_status(root: Path) -> dict:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return repo.status()


def pipeline_stages(root: Path) -> set[str]:
    """The stages dvc.yaml defines now (matrix items by name)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {stage.name for stage in repo.index.stages}


def prune_lock(text: str, stages: set[str]) -> tuple[str, list[str]]:
    """dvc.lock's text without the stages not in ``stages``, and their names; every other line
    as it was."""
    import re

    header, *blocks = re.split(r"(?m)^(?=  \S)", text)  # the header, then one per stage
    named = [(block.split(":", 1)[0].strip(), block) for block in blocks]
    kept = [block for name, block in named if name in stages]
    return "".join([header, *kept]), [name for name, _ in named if name not in stages]


def prune_dead_stages(root: Path) -> None:
    lock = root / "dvc.lock"
    text, dead = prune_lock(lock.read_text(), pipeline_stages(root)) if lock.is_file() else ("", [])
    if dead:
        lock.write_text(text)
        log(f"removed {len(dead)} stage(s) that dvc.yaml no longer defines from dvc.lock: "
            f"{', '.join(dead)}")


def fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    return {name: ((s := (root / name).stat()).st_size, s.st_mtime_ns)
            for name in working_tree(root)}


def clone_way(root: Path, remote: str, scheduler: str | None, workdir: str | None) -> Clone:
    """The commit the workers check out (EngineError if code differs from it), with the remote
    made this workspace's default (what `dvc repro --pull` pulls from) and the items' inputs
    and run-cache pushed to it."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        url = repo.config["remote"].get(remote, {}).get("url")
    if not url:
        raise EngineError(f"--remote {remote}: no such DVC remote; add one with "
                          f"`dvc remote add {remote} URL` (S3, SSH or a shared directory)")
    status = check(["git", "status", "--porcelain", "-z", "--untracked-files=no"], root)
    code = [entry[3:] for entry in status.split("\0") if entry[3:] and not entry[3:].startswith(
        ("params.yaml", "dvc.lock", "metrics/", "plots/", "reports/"))]
    if code:
        raise EngineError(f"uncommitted changes the workers would not run: {', '.join(code)}; "
                          f"commit them first ({' and '.join(SENT)} are sent as they are)")
    commit = check(["git", "rev-parse", "HEAD"], root).strip()
    check(dvc("remote", "default", "--local", remote), root)
    check(dvc("push", "--remote", remote, *UPSTREAM), root)
    check(dvc("push", "--remote", remote, "--run-cache"), root)
    origin = subprocess.run(["git", "remote", "get-url", "origin"], cwd=root,
                            capture_output=True, text=True).stdout.strip()
    return Clone(origin if scheduler and origin else str(root), commit,
                 tuple((name, (root / name).read_text()) for name in SENT), remote, url,
                 workdir or str(Path("/tmp") / "fmnist-cluster"))


def run_items(root: Path, items: list[str], way: Copy | Clone, jobs: int,
              scheduler: str | None) -> list[dict]:
    """Every item as a Dask task, with a progress bar; EngineError naming each failed one."""
    import cloudpickle
    from dask.distributed import Client, Event, LocalCluster, as_completed, wait
    from tqdm import tqdm

    if scheduler:
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            cluster, client = None, Client(scheduler, timeout=60)
            client.wait_for_workers(1, timeout=60)
        except (OSError, TimeoutError) as e:
            raise EngineError(f"--scheduler {scheduler}: no scheduler with a worker answered "
                              f"within 60 s ({type(e).__name__})") from None
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=False,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    stop = f"stop-{uuid.uuid4().hex}"
    local = isinstance(way, Copy)
    workers = len(client.scheduler_info()["workers"])
    log(f"{len(items)} {MATRIX} items on {workers} worker(s)"
        + (f" at {scheduler}" if scheduler else "") + (f" (logs in {LOGS}/)"))
    futures = {client.submit(run_item, item, way, stop,
                             str(root / LOGS / f"{item}.log") if local else None,
                             key=f"{item}-{stop}", pure=False): item for item in items}
    results = []
    try:
        with tqdm(total=len(items), desc=f"{MATRIX} items", unit="item") as bar:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception as e:  # the task's own error (its workspace), raised here
                    result = {"item": futures[future], "error": f"{type(e).__name__}: {e}",
                              "trained": False}
                if result.get("output") is not None:
                    (root / LOGS / f"{result['item']}.log").write_text(result["output"])
                bar.write(f"{result['item']}: " + ("failed" if result["error"] else "trained"
                          if result["trained"] else "restored from the run-cache"))
                bar.update(1)
                results.append(result)
    except BaseException:  # Ctrl-C above all
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot cut this short
        Event(stop, client).set()  # every task kills its dvc's process group within a second
        wait(futures, timeout=30)
        if local:
            stop_descendants()
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    failed = [r for r in results if r["error"]]
    if failed:
        raise EngineError(f"{len(failed)} of {len(items)} item(s) failed, nothing assembled: "
                          + "; ".join(f"{r['item']}: {r['error']} (log: {LOGS}/{r['item']}.log)"
                                      for r in failed))
    return results


def stop_descendants() -> None:
    """SIGKILL to every process this one started, directly or not; wait until they are gone."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=30)


@contextmanager
def one_run(root: Path):
    """This workspace for this run alone: EngineError naming the other run's PID otherwise.
    The lock is the kernel's (flock): a killed run holds it no more."""
    from filelock import FileLock, Timeout

    tmp, pid = root / TMP, root / TMP / "repro.pid"
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        lock = FileLock(tmp / "repro.lock")
        lock.acquire(timeout=0)
    except Timeout:
        other = pid.read_text().strip() if pid.is_file() else "unknown"
        raise EngineError(f"another run (PID {other}) is using this workspace; wait for it to "
                          f"end or stop it") from None
    except OSError as e:
        raise EngineError(f"{e.filename or tmp}: {e.strerror or e}") from None
    try:
        pid.write_text(f"{os.getpid()}\n")
        yield
    finally:
        lock.release()


def reproduce(root: Path, jobs: int | None, scheduler: str | None, remote: str | None,
              workdir: str | None) -> int:
    here = lambda *args: subprocess.run(dvc(*args), cwd=root, env=stage_env()).returncode  # noqa: E731
    try:
        reset(root / WORKDIR)  # what a crashed run left
        reset(root / LOGS)
        (root / LOGS).mkdir(parents=True)
    except OSError as e:
        raise EngineError(f"{e.filename}: {e.strerror}") from None
    code = here("repro", *UPSTREAM)
    if code:
        return code
    items = [name for name in dvc_status(root) if name.startswith(f"{MATRIX}@")]
    jobs = min(jobs or default_jobs(len(items)), len(items))
    if items and (remote or jobs >= 2):  # one core or one item: the plain `dvc repro` below
        way = clone_way(root, remote, scheduler, workdir) if remote else Copy(str(root))
        before = fingerprint(root)
        try:
            results = run_items(root, items, way, jobs, scheduler)
        finally:
            reset(root / WORKDIR)
        after = fingerprint(root)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if changed:
            raise EngineError(f"{', '.join(changed)} changed while the items ran: their results "
                              f"are for the files as they were; run again")
        trained = sum(r["trained"] for r in results)
        log(f"{len(results)} items done ({trained} trained, {len(results) - trained} restored "
            f"from the run-cache); now `dvc repro`{' --pull' if remote else ''} here")
    code = here("repro", *(("--pull",) if remote else ()))
    if code == 0:
        prune_dead_stages(root)
    return code


def log(message: str) -> None:
    print(f"repro: {message}", file=sys.stderr, flush=True)


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmnist_mlp.engine.repro",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("-j", "--jobs", type=positive,
                        help="local workers (default: every core, bounded by memory)")
    parser.add_argument("--scheduler", help="a Dask scheduler's address, e.g. tls://HOST:8786 "
                                            "(default: a cluster of this machine)")
    parser.add_argument("--remote", help="the DVC remote the workers share (a clone each)")
    parser.add_argument("--workdir", help="where workers clone (default: /tmp/fmnist-cluster)")
    args = parser.parse_args(argv)
    if args.scheduler and not args.remote:
        parser.error("--scheduler needs --remote: remote workers send results through it")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores it
    root = Path.cwd()
    try:
        with one_run(root):
            return reproduce(root, args.jobs, args.scheduler, args.remote, args.workdir)
    except EngineError as e:
        print(f"repro: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("repro: interrupted; every item's dvc and stage stopped, none recorded unfinished",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
