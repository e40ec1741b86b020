"""`dvc repro` with the search's matrix items side by side on a Dask cluster: this machine's
cores (`make repro`) or a scheduler's workers (`make search-cluster`).

The stages the items need run here; each stale item the run-cache does not hold is then one Dask
task, `dvc repro --single-item` in its worker's copy of this working tree (uncommitted edits and
params included), sharing this DVC cache or, with ``--remote``, a DVC remote. Every item comes
home from the run-cache, `dvc repro` runs the rest, and dvc.lock is settled in a serial run's
order: dvc.lock and every output are a serial `dvc repro`'s.
A failed item is named with its log and nothing is assembled. Ctrl-C, or this process's death,
stops every item's dvc and stage at once; DVC records an item only once it has finished.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

MATRIX = "search"  # the matrix stage whose items run side by side
TMP = Path(".dvc/tmp")  # ignored by git and by DVC
WORKDIR = TMP / "repro"  # the local workers' copies
LOGS = Path("logs/repro")  # one log per item, new each run
TIMING = Path("timings/repro.json")  # the phases' wall seconds (untracked; bench.grid reads it)
WORKER_MEMORY = 1.5 * 2**30  # bytes one item's process takes at most (TensorFlow, the data)
LINKED = ("data/prepared",)  # the items' big input: hard links in a copy
READY = ".workspace-ready"  # written last in a worker's workspace: it is complete
BITS = ("numpy", "scipy", "scikit-learn", "tensorflow", "keras", "dvc")  # same on every worker
BIG = 2**20  # bytes above which a working-tree file is hard-linked into a copy, not copied


class EngineError(Exception):
    """A failure of the run, said in one line."""


# What runs on a worker (run_item, Workspace) needs only the standard library and Dask: for a
# remote scheduler this module is pickled by value, so a worker needs no copy of the project.


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def guarded(argv: list[str]) -> list[str]:
    """``argv`` killed when the thread that starts it dies (setpriv's PR_SET_PDEATHSIG)."""
    return ["setpriv", "--pdeathsig", "KILL", "--", *argv] if shutil.which("setpriv") else argv


def stage_env() -> dict:
    """This Python's venv first on PATH: DVC runs the stages' `python`. DVC runs a stage as
    `$SHELL -c cmd`: bash execs a lone command, so the stage is dvc's child and dies with it;
    sh (dash) would stay between them and outlive a killed dvc."""
    env = {k: v for k, v in os.environ.items() if k not in ("BASH_ENV", "ENV")}  # no rc file
    return dict(env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                SHELL=shutil.which("bash") or os.environ.get("SHELL", "/bin/sh"))


def check(argv: list[str], cwd: Path) -> str:
    """A command's output, or EngineError with its last line."""
    result = subprocess.run(guarded(argv), cwd=cwd, env=stage_env(), capture_output=True,
                            text=True)
    if result.returncode != 0:
        said = (result.stdout + result.stderr).strip().splitlines() or ["(no output)"]
        command = " ".join([Path(argv[0]).name, *argv[1:6]])
        raise EngineError(f"`{command}` exited {result.returncode}: {said[-1].strip()}")
    return result.stdout


def reset(path: Path) -> None:
    """Remove ``path``, whatever a crashed run left there: a directory, a file, a symlink."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


@dataclass(frozen=True)
class Workspace:
    """How a worker gets this working tree and hands its items back. ``files``: the files of the
    tree the items need (``needed``), with their bytes (a cluster), or None: read from ``root``
    when the workspace is made, copied, or hard-linked if over ``BIG`` bytes (this machine: the
    driver holds no file's bytes); written once per worker under ``base``. This machine:
    data/prepared hard-linked, the DVC cache ``cache`` shared. A cluster (``remote``: a DVC
    remote's name and URL): the items' inputs pulled from the remote, their results and
    run-cache pushed to it, one cache ``cache`` per worker machine."""

    base: str
    files: tuple[tuple[str, bytes | None], ...]
    cache: str
    root: str | None = None
    remote: tuple[str, str] | None = None

    def make(self, worker: str) -> Path:
        dest = Path(self.base) / worker
        if not (dest / READY).is_file():  # written last: a half-made workspace is made again
            reset(dest)
            for name, data in self.files:
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                if data is None and (Path(self.root) / name).stat().st_size > BIG:
                    os.link(Path(self.root) / name, dest / name)  # read by the items only
                elif data is None:
                    shutil.copy(Path(self.root) / name, dest / name)  # DVC may rewrite it
                else:
                    (dest / name).write_bytes(data)
            for name in LINKED if self.root else ():
                shutil.copytree(Path(self.root) / name, dest / name, copy_function=os.link)
            check(["git", "init", "-q"], dest)
            if self.remote:
                check(dvc("remote", "add", "--local", "--default", *self.remote), dest)
            check(dvc("cache", "dir", "--local", self.cache), dest)
            (dest / READY).touch()
        return dest


def run_item(item: str, way: Workspace, stop: str, log: str | None) -> dict:
    """One Dask task: ``item`` in this worker's workspace; its error (None: done), whether it
    trained (False: restored from a run-cache) and, without ``log``, its output. Its dvc dies
    with this process (PR_SET_PDEATHSIG), its process group with dvc or on ``stop``."""
    from distributed import Event, get_worker

    if Event(stop).is_set():
        return {"item": item, "error": "stopped", "trained": False, "train": 0}
    workspace = way.make(re.sub(r"\W", "-", str(get_worker().name)))
    timings = workspace / "timings"  # a stage writes its timing only when it runs
    shutil.rmtree(timings, ignore_errors=True)
    path = Path(log) if log else workspace / "item.log"
    path.unlink(missing_ok=True)  # a new file: nothing of an earlier run writes into it
    with path.open("w") as out:
        pull = ("--pull",) if way.remote else ()
        process = subprocess.Popen(guarded(dvc("repro", "--single-item", *pull, item)),
                                   cwd=workspace, stdout=out, stderr=subprocess.STDOUT,
                                   env=stage_env(), start_new_session=True)
    try:
        while (code := process.poll()) is None:
            if Event(stop).is_set():
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # what dvc left behind: its stage
    output = path.read_text(errors="replace")
    named = {s.value: s.name for s in signal.Signals}
    error = (f"dvc was killed by {named.get(-code, f'signal {-code}')}" if code < 0 else
             failure(output, code) if code else None)
    if error is None and way.remote:
        check(dvc("push", "--remote", way.remote[0], item), workspace)
        check(dvc("push", "--remote", way.remote[0], "--run-cache"), workspace)
    train = []
    for p in timings.glob("search-*.json"):  # a stage killed while writing it: not counted
        with contextlib.suppress(OSError, ValueError, KeyError):
            train.append(json.loads(p.read_text())["train"])
    return {"item": item, "error": error, "trained": bool(train), "train": sum(train),
            "output": None if log else output}


def failure(output: str, code: int) -> str:
    """Why an item's `dvc repro` exited ``code``, from its log ``output``: the search stage's
    own one-line error, else DVC's last `ERROR:` line (a stage that crashed, DVC's own
    refusal), else the exit code."""
    lines = [" ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", ln).split())
             for ln in output.splitlines()]  # no colours, one line
    for prefix in (f"{MATRIX}: error:", "ERROR:"):
        if said := [ln for ln in lines if ln.startswith(prefix)]:
            line = said[-1] if len(said[-1]) <= 400 else f"{said[-1][:400]}..."
            return line if prefix != "ERROR:" else f"dvc exited {code}: {line}"
    return f"dvc exited {code}"


# The driver, on this machine.


def default_jobs(items: int) -> int:
    """Every core, as many as memory allows, no more than there are items."""
    from fmnist_mlp.core.resources import available_memory, cores

    return max(1, min(cores(), items, int(available_memory() // WORKER_MEMORY)))


def plan(root: Path) -> tuple[list[str], list[str], set[str]]:
    """DVC's plan: the stages of a plain `dvc repro` in the order it runs and records them; the
    items' inputs' stages among them; the stages dvc.lock records now."""
    import networkx as nx
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro
    from dvc.utils.serialize import load_yaml

    lock = root / "dvc.lock"
    try:
        with Repo(str(root)) as repo:
            graph = get_active_graph(repo.index.graph)  # an edge: a stage to one it needs
            steps = plan_repro(graph, collect_stages(repo, [str(root / "dvc.yaml")]))
            item = next((s for s in steps if getattr(s, "name", "").startswith(f"{MATRIX}@")),
                        None)
            needs = nx.descendants(graph, item) if item else set()
            names = [getattr(stage, "name", stage.addressing) for stage in steps]
            return (names, [n for s, n in zip(steps, names) if s in needs],
                    set(load_yaml(lock).get("stages", {})) if lock.is_file() else set())
    except DvcException as e:
        raise EngineError(" ".join(str(e).split())) from None


def bring_home(repo, items: list[str], remote: str | None, dry: bool = False) -> list[str]:
    """The return step: ``items`` restored from the run-cache (with ``remote``, pulled from it)
    as `dvc repro` restores a stage (its old outputs removed, the cached ones checked out, saved
    and committed), in dvc.yaml's order, and recorded in dvc.lock in one write; the items the
    run-cache does not hold (or frozen: `dvc repro` checks those), left to train. ``dry``: only
    which are left, nothing restored. `dvc repro` rewrites dvc.lock once a stage: O(items^2)."""
    from dvc.exceptions import DvcException
    from dvc.stage.cache import RunCacheNotFoundError
    from tqdm import tqdm

    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    dvc_log.setLevel(logging.WARNING)  # a line per item would break the bar
    try:
        with repo.lock, repo.scm_context:
            if remote and items:
                repo.stage_cache.pull(remote)
            wanted, done, left = set(items), [], []
            stages = [stage for stage in repo.index.stages if stage.addressing in wanted]
            for stage in tqdm(stages, f"{MATRIX} items from the run-cache", unit="item",
                              leave=False, disable=len(stages) < 2 or dry):
                try:
                    if stage.frozen:
                        raise RunCacheNotFoundError(stage)
                    if dry:  # the entry restore would find (its dry run keys on the old deps)
                        stage.save_deps()
                        if not repo.stage_cache._load(stage):
                            raise RunCacheNotFoundError(stage)
                        continue
                    stage.remove_outs(ignore_remove=False, force=False)
                    repo.stage_cache.restore(stage, pull=bool(remote))
                    stage.save(run_cache=False)  # the entry it came from
                    stage.commit()
                except RunCacheNotFoundError:
                    left.append(stage.addressing)
                    continue
                except DvcException as e:
                    raise EngineError(f"{stage.addressing}: {' '.join(str(e).split())}") from None
                done.append(stage)
            if done:
                done[0].dvcfile.dump_stages(done, update_pipeline=False)
        return left
    finally:
        dvc_log.setLevel(level)  # also when an item fails


def check_grid(repo, items: list[str]) -> None:
    """The search stage's check that its checkpoints fit on the disk, here once for the items to
    train: one line before any starts (each item checks only itself)."""
    from fmnist_mlp.core.errors import StudyError
    from fmnist_mlp.core.params import load_section
    from fmnist_mlp.grid.search import SearchConfig, check_disk, expand_grid

    root = Path(repo.root_dir)  # an item's first output is its directory, named as its Trial
    outs = {s.addressing: Path(s.outs[0].def_path) for s in repo.index.stages}
    try:
        cfg = load_section(SearchConfig, root / "params.yaml")
        trials = {trial.name: trial for trial in expand_grid(cfg)}
        check_disk(cfg, [trials[outs[item].name] for item in items],
                   root / outs[items[0]].parent, Path(repo.cache.local_cache_dir))
    except StudyError as e:
        raise EngineError(str(e)) from None


def working_tree(root: Path) -> list[str]:
    """The files of a fresh clone with this tree's edits: tracked and not-ignored files."""
    listed = check(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], root)
    return [name for name in dict.fromkeys(listed.split("\0")) if (root / name).is_file()]


def fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    return {name: ((s := (root / name).stat()).st_size, s.st_mtime_ns)
            for name in working_tree(root)}


META = {"dvc.yaml", "dvc.lock", "params.yaml", ".dvcignore", ".gitignore"}  # wherever they lie


def needed(repo, tree, items: list[str]) -> list[str]:
    """The files of ``tree`` a worker's copy of the items ``items`` needs: git's tracked ones (a
    fresh clone's), and of the untracked ones, DVC's and git's own (``META``, .dvc/; the params
    a dvc.yaml interpolates are no stage's dep), those the items depend on (their deps and
    params files) and the ``__init__.py`` of the packages above them (without it, a package of
    the installed project would be imported instead)."""
    root = Path(repo.root_dir)
    tracked = set(check(["git", "ls-files", "-z", "--cached"], root).split("\0"))
    wanted = set(items)
    deps = {Path(os.path.relpath(dep.fs_path, root)).as_posix() for stage in repo.index.stages
            if getattr(stage, "name", stage.addressing) in wanted for dep in stage.deps}
    above = {parent.as_posix() for dep in deps for parent in Path(dep).parents}
    return [name for name in tree
            if name in tracked or Path(name).name in META or name.startswith(".dvc/")
            or any(name == dep or name.startswith(f"{dep}/") for dep in deps)
            or (Path(name).name == "__init__.py" and Path(name).parent.as_posix() in above)]


def workspace(repo, tree: dict[str, tuple[int, int]], remote: str | None, workdir: str | None,
              first: list[str], items: list[str]) -> Workspace:
    """What the workers of ``items`` get: the files of ``tree`` (``fingerprint``'s) they need;
    with ``remote``, that remote made this workspace's default (`dvc repro --pull`'s) and the
    outputs of the stages ``first`` (the items' inputs) and the run-cache pushed to it."""
    root, cache = Path(repo.root_dir), repo.cache.local_cache_dir
    names = needed(repo, tree, items)
    if not remote:  # read from this tree when a workspace is made: no bytes held here
        return Workspace(str(root / WORKDIR), tuple((name, None) for name in names), cache,
                         root=str(root))
    files = tuple((name, None if tree[name][0] > BIG else (root / name).read_bytes())
                  for name in names)
    url = remote_url(repo, remote)
    check(dvc("remote", "default", "--local", remote), root)
    check(dvc("push", "--remote", remote, *first), root)
    check(dvc("push", "--remote", remote, "--run-cache"), root)
    if big := [name for name, data in files if data is None]:
        log(f"not sent to the workers (over {BIG} bytes): {', '.join(big)}")
    base = Path(workdir or "/tmp/fmnist-cluster")
    return Workspace(str(base / uuid.uuid4().hex), tuple(f for f in files if f[1] is not None),
                     str(base / "dvc-cache"), remote=(remote, url))


def remote_url(repo, remote: str) -> str:
    """The URL of the DVC remote ``remote`` of ``repo``, or EngineError."""
    url = repo.config["remote"].get(remote, {}).get("url")
    if not url:
        raise EngineError(f"--remote {remote}: no such DVC remote; add one with "
                          f"`dvc remote add {remote} URL` (an ssh:// URL or a shared directory; "
                          f"docs/cluster.md)")
    return url


def local_cluster(jobs: int):
    """``jobs`` single-threaded workers in this process, talking through memory (inproc://);
    their HTTP servers listen on the loopback interface alone, on ports the system picks (Dask's
    ``dashboard_address=None`` would still listen on every interface, on port 8787)."""
    from dask.distributed import LocalCluster

    return LocalCluster(n_workers=jobs, threads_per_worker=1, processes=False,
                        dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0",
                        silence_logs=logging.CRITICAL)


def reach(scheduler: str, timeout: float = 10) -> None:
    """A TCP connection to ``scheduler``'s host and port, or EngineError: at once if refused,
    after ``timeout`` s if nothing answers (Dask's client retries a refused port until its own
    timeout)."""
    from distributed.comm import parse_address, parse_host_port

    protocol, location = parse_address(scheduler)
    if protocol not in ("tcp", "tls"):
        return
    try:
        host, port = parse_host_port(location)
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        raise EngineError(f"--scheduler {scheduler}: no answer within {timeout:g} s") from None
    except (OSError, ValueError) as e:
        raise EngineError(f"--scheduler {scheduler}: cannot connect: "
                          f"{getattr(e, 'strerror', None) or e}") from None


def connect(scheduler: str):
    """A client of ``scheduler`` with a worker whose packages are this machine's."""
    import cloudpickle
    from dask.distributed import Client

    reach(scheduler)
    if scheduler.startswith("tcp://") and not re.match(r"tcp://(127\.|localhost|\[::1\])",
                                                        scheduler):
        log("tcp:// is neither encrypted nor authenticated: whoever reaches the scheduler runs "
            "code on its workers; use tls:// (docs/cluster.md)")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        client = Client(scheduler, timeout=60)
        client.wait_for_workers(1, timeout=60)
    except (OSError, TimeoutError) as e:
        raise EngineError(f"--scheduler {scheduler}: no scheduler with a worker answered within "
                          f"60 s ({type(e).__name__})") from None
    versions = client.get_versions(packages=list(BITS))
    here = versions["client"]["packages"]
    if differ := sorted({f"{name} {info['packages'].get(name)} on {worker} (here {here.get(name)})"
                         for worker, info in versions["workers"].items() for name in BITS
                         if info["packages"].get(name) != here.get(name)}):
        client.close()
        raise EngineError(f"--scheduler {scheduler}: the workers' packages differ, their bytes "
                          f"would too: {'; '.join(differ)}")
    return client


def run_items(root: Path, items: list[str], way: Workspace, jobs: int, scheduler: str | None,
              remote_client=None) -> list[dict]:
    """Every item as a Dask task (on ``remote_client``, ``scheduler``'s, else on a local
    cluster), with a progress bar; EngineError naming each failed one."""
    import psutil
    from dask.distributed import Client, Event, as_completed, wait
    from tqdm import tqdm

    cluster = None if scheduler else local_cluster(jobs)
    client = remote_client or Client(cluster)
    stop, local = f"stop-{uuid.uuid4().hex}", way.remote is None
    log(f"{len(items)} {MATRIX} items on {len(client.scheduler_info()['workers'])} worker(s)"
        f"{' at ' + scheduler if scheduler else ''} (logs in {LOGS}/)")
    shared = client.scatter(way, broadcast=True)  # the tree's files sent once per worker
    futures = {client.submit(run_item, item, shared, stop,
                             str(root / LOGS / f"{item}.log") if local else None,
                             key=f"{item}-{stop}", pure=False): item for item in items}
    results = []
    try:
        with tqdm(total=len(items), desc=f"{MATRIX} items", unit="item") as bar:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception as e:  # the task's own error (its workspace), raised here
                    error = " ".join(f"{type(e).__name__}: {e}".split())
                    result = {"item": futures[future], "error": error, "trained": False,
                              "train": 0, "output": f"{error}\n"}
                if result.get("output") is not None:
                    (root / LOGS / f"{result['item']}.log").write_text(result["output"])
                bar.write(f"{result['item']}: " + ("failed" if result["error"] else "trained"
                          if result["trained"] else "restored from the run-cache"))
                bar.update(1)
                results.append(result)
    except BaseException:  # Ctrl-C above all
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot cut this short
        Event(stop, client).set()  # each task kills its dvc's process group within a second
        with contextlib.suppress(TimeoutError):
            wait(list(futures), timeout=30)
        left = psutil.Process().children(recursive=True) if cluster else []  # ours: local
        for process in left:
            process.kill()
        psutil.wait_procs(left, timeout=30)
        raise
    finally:
        if not local:  # the workers' workspaces (their DVC cache stays: data pulled once)
            client.run(shutil.rmtree, way.base, True, on_error="ignore")
        if cluster is not None:
            client.close()
            cluster.close()
    if failed := [r for r in results if r["error"]]:
        raise EngineError(f"{len(failed)} of {len(items)} item(s) failed, nothing assembled: "
                          + "; ".join(f"{r['item']}: {r['error']} (log: {LOGS}/{r['item']}.log)"
                                      for r in failed))
    return results


PID_WAIT = 2.0  # seconds a refused run waits for the run holding the lock to write its PID


def other_run(pid: Path) -> str:
    """The PID the run holding the lock wrote (atomically, right after taking it): waits up to
    ``PID_WAIT`` s for it to appear, since the two runs may have started at the same instant;
    "unknown" if none shows, or only that of a run no longer alive (killed, its lock freed)."""
    deadline = time.monotonic() + PID_WAIT
    while True:
        with contextlib.suppress(OSError, ValueError):
            other = int(pid.read_text())
            if alive(other):
                return str(other)
        if time.monotonic() >= deadline:
            return "unknown"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def write_pid(pid: Path) -> None:
    """This run's PID in ``pid``, atomically (a new file renamed over it): a reader finds the
    whole PID or the file as it was, never an empty or half-written one."""
    if pid.is_dir():
        raise EngineError(f"{pid}: a directory where the engine writes its PID file; remove it")
    part = pid.with_name(f"{pid.name}.{os.getpid()}")
    try:
        part.write_text(f"{os.getpid()}\n")
        os.replace(part, pid)
    except OSError as e:
        raise EngineError(f"{pid}: {e.strerror or e}") from None
    finally:
        part.unlink(missing_ok=True)


@contextlib.contextmanager
def one_run(root: Path):
    """This workspace for this run alone (the kernel's flock: a killed run holds it no more);
    EngineError naming the other run's PID otherwise. The PID file is written after the lock
    is taken and removed before it is released."""
    from filelock import FileLock, Timeout

    tmp, pid = root / TMP, root / TMP / "repro.pid"
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        lock = FileLock(tmp / "repro.lock")
        lock.acquire(timeout=0)
    except Timeout:
        raise EngineError(f"another run (PID {other_run(pid)}) is using this workspace; wait "
                          f"for it to end or stop it") from None
    except OSError as e:
        raise EngineError(f"{e.filename or tmp}: {e.strerror or e}") from None
    try:
        write_pid(pid)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                pid.unlink()
    finally:
        lock.release()


def reproduce(root: Path, jobs: int | None, scheduler: str | None, remote: str | None,
              workdir: str | None) -> int:
    """The run, once what the user named is checked, before any work or change: the remote
    exists, the scheduler answers with a worker whose packages are this machine's. The run
    makes the remote this workspace's default (`dvc repro --pull`'s); .dvc/config.local is put
    back as it was at the end, whatever the end."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    if remote:
        try:
            with Repo(str(root)) as repo:
                remote_url(repo, remote)
        except DvcException as e:
            raise EngineError(" ".join(str(e).split())) from None
    client = connect(scheduler) if scheduler else None
    local = root / ".dvc" / "config.local"
    kept = local.read_bytes() if remote and local.is_file() else None
    try:
        return run(root, jobs, client, scheduler, remote, workdir)
    finally:
        if client is not None:
            client.close()
        if remote and kept is None:
            local.unlink(missing_ok=True)
        elif remote:
            local.write_bytes(kept)


def run(root: Path, jobs: int | None, client, scheduler: str | None, remote: str | None,
        workdir: str | None) -> int:
    from dvc.repo import Repo

    def here(*args: str) -> int:
        return subprocess.run(guarded(dvc(*args)), cwd=root, env=stage_env()).returncode

    try:
        reset(root / WORKDIR)  # what a crashed run left
        reset(root / LOGS)
        (root / LOGS).mkdir(parents=True)
        (root / TIMING).unlink(missing_ok=True)  # written again only if the items ran
    except OSError as e:
        raise EngineError(f"{e.filename}: {e.strerror}") from None
    steps, first, before = plan(root)
    if first and (code := here("repro", *first)):  # the items' inputs, here
        return code
    with Repo(str(root)) as repo:  # the stale items this run-cache holds need no worker
        stale = [name for name in repo.status() if name.startswith(f"{MATRIX}@")]
        items = bring_home(repo, stale, None, dry=True)
    way = None  # below, a new index each time: the dry run saved its stages' deps
    if items:  # the held ones come home with them, after: outputs in a serial run's order
        with Repo(str(root)) as repo:
            check_grid(repo, items)
            jobs = min(jobs or default_jobs(len(items)), len(items))
            if remote or jobs >= 2:  # else (one core or one item) the `dvc repro` below
                tree = fingerprint(root)
                way = workspace(repo, tree, remote, workdir, first, items)
    elif stale:  # every stale item is in this run-cache: home now, no worker
        with Repo(str(root)) as repo:
            bring_home(repo, stale, None)
    trained, spent = 0, {}  # wall seconds of the phases, timings/repro.json (bench.grid)
    if way:
        start = time.perf_counter()
        try:
            results = run_items(root, items, way, jobs, scheduler, client)
        finally:
            reset(root / WORKDIR)
        trained = sum(r["trained"] for r in results)
        spent.update(items=time.perf_counter() - start, workers=jobs if scheduler is None else 0,
                     train=sum(r["train"] for r in results))
        now = fingerprint(root)
        if changed := sorted(k for k in tree | now if tree.get(k) != now.get(k)):
            raise EngineError(f"{', '.join(changed)} changed while the items ran: their results "
                              f"are for the files as they were; run again")
        start = time.perf_counter()
        with Repo(str(root)) as repo:
            if missing := bring_home(repo, stale, remote):
                raise EngineError(f"{len(missing)} item(s) ran but their results are not in "
                                  f"the run-cache: {', '.join(missing)}")
        spent.update(return_step=time.perf_counter() - start, ran=len(items))
        items = []
    if stale:
        log(f"{len(stale) - len(items)} of {len(stale)} items done ({trained} trained, "
            f"{len(stale) - len(items) - trained} restored from the run-cache); now `dvc repro`")
    start = time.perf_counter()
    code = here("repro", *(("--pull",) if remote else ()))
    if spent and not code:
        from fmnist_mlp.core.files import write_json

        write_json(root / TIMING, {**spent, "final_repro": time.perf_counter() - start})
    settle(root, before, steps)  # also after a failure: the next run's ``before`` is right
    return code


def settle(root: Path, before: set[str], steps: list[str]) -> None:
    """dvc.lock as a serial `dvc repro` leaves it: the stages recorded ``before`` the run in their
    places, the new ones after them in the order of DVC's plan ``steps`` (DVC appends a stage as
    it records it); re-staged if DVC's autostage had staged it."""
    from dvc.utils.serialize import modify_yaml

    lock = root / "dvc.lock"
    new = [name for name in steps if name not in before]
    if not new or not lock.is_file():  # nothing recorded this run can be out of place
        return
    text = lock.read_text()
    with modify_yaml(lock) as data:  # DVC's own writer of dvc.lock
        for name in new:
            if name in data["stages"]:
                data["stages"].move_to_end(name)
    if lock.read_text() != text and subprocess.run(
            ["git", "diff", "--cached", "--quiet", "--", "dvc.lock"], cwd=root).returncode == 1:
        check(["git", "add", "dvc.lock"], root)  # DVC's autostage had staged it


def log(message: str) -> None:
    print(f"repro: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmnist_mlp.engine.repro",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("-j", "--jobs", type=int, help="local workers (default: every core, "
                                                       "bounded by memory and by the items)")
    parser.add_argument("--scheduler", help="a Dask scheduler's address, e.g. tls://HOST:8786 "
                                            "(default: a cluster of this machine)")
    parser.add_argument("--remote", help="the DVC remote the workers share")
    parser.add_argument("--workdir", help="the workers' directory with --remote "
                                          "(default: /tmp/fmnist-cluster)")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"argument -j/--jobs: expected at least 1, got {args.jobs}")
    if args.scheduler and not args.remote:
        parser.error("--scheduler needs --remote: remote workers send results through it")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores it
    # Dask's INFO lines are not the user's: at shutdown a comm closed under a task logs one,
    # with a traceback, once LocalCluster's silence_logs has ended
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if not (Path.cwd() / ".dvc").is_dir():
        parser.error(f"{Path.cwd()} is not a DVC project's root (no .dvc): run it from there")
    try:
        with one_run(Path.cwd()):
            return reproduce(Path.cwd(), args.jobs, args.scheduler, args.remote, args.workdir)
    except EngineError as e:
        print(f"repro: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("repro: interrupted; every dvc and stage of this run stopped, none recorded "
              "unfinished", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
