"""`dvc repro` with the search's matrix items side by side on a Dask cluster: this machine's
cores (`make repro`) or a scheduler's workers (`make search-cluster`).

The stages the items need run here; each stale item the run-cache does not hold is then one Dask
task, `dvc repro --single-item` in its worker's copy of this working tree (uncommitted edits and
params included), sharing this DVC cache or, with ``--remote``, a DVC remote. Every item comes
home from the run-cache, `dvc repro` runs the rest, and dvc.lock is settled in a serial run's
order: dvc.lock and every output are a serial `dvc repro`'s.
A failed item is named with its log and nothing is assembled. Ctrl-C, or this process's death,
stops every item's dvc and stage at once; DVC records an item only once it has finished.

This module is the command line and the run's steps (``reproduce``, ``run_steps``); worker.py
is what a Dask worker runs, with the few pieces the driver shares with it (``EngineError``,
``log``, ``guarded``...: the worker may import nothing else of the project), dvc_state.py the
DVC bookkeeping, cluster.py the Dask side, lock.py one run per workspace (docs/design.md, "The
engine").
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fmnist_mlp.engine import cluster, dvc_state
from fmnist_mlp.engine.cluster import default_jobs
from fmnist_mlp.engine.dvc_state import DvcPlan, ItemPlan
from fmnist_mlp.engine.lock import one_run
from fmnist_mlp.engine.worker import (
    EngineError,
    Workspace,
    check,
    dvc,
    guarded,
    log,
    reset,
    stage_env,
)


@dataclass(frozen=True)
class Options:
    """What the user named: local workers (None: as many as fit), a Dask scheduler's address
    (None: a local cluster), a DVC remote (None: this DVC cache) and the remote workers'
    directory (None: ``dvc_state.REMOTE_WORKDIR``)."""

    jobs: int | None = None
    scheduler: str | None = None
    remote: str | None = None
    workdir: str | None = None


@dataclass(frozen=True)
class Workers:
    """How the items to train go to Dask: ``jobs`` local workers (a scheduler's own otherwise),
    each given ``workspace``; ``tree_before``, the working tree's fingerprint when the workspace
    was read from it."""

    jobs: int
    workspace: Workspace
    tree_before: dict[str, tuple[int, int]]


def main(argv: list[str] | None = None) -> int:
    """The command line: its exit code (1: an EngineError said in one line; 130: Ctrl-C)."""
    parser = argparse.ArgumentParser(prog="python -m fmnist_mlp.engine.repro",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("-j", "--jobs", type=int, help="local workers (default: every core, "
                                                       "bounded by memory and by the items)")
    parser.add_argument("--scheduler", help="a Dask scheduler's address, e.g. tls://HOST:8786 "
                                            "(default: a cluster of this machine)")
    parser.add_argument("--remote", help="the DVC remote the workers share")
    parser.add_argument("--workdir", help="the workers' directory with --remote "
                                          f"(default: {dvc_state.REMOTE_WORKDIR})")
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
            return reproduce(Path.cwd(), Options(args.jobs, args.scheduler, args.remote,
                                                 args.workdir))
    except EngineError as e:
        print(f"repro: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("repro: interrupted; every dvc and stage of this run stopped, none recorded "
              "unfinished", file=sys.stderr)
        return 130


def reproduce(root: Path, options: Options) -> int:
    """The run, once what the user named is checked, before any work or change: the remote
    exists, the scheduler answers with a worker whose packages are this machine's. The run
    makes the remote this workspace's default (`dvc repro --pull`'s); .dvc/config.local is put
    back as it was at the end, whatever the end."""
    if options.remote:
        check_remote(root, options.remote)
    client = cluster.connect(options.scheduler) if options.scheduler else None
    with config_local_kept(root) if options.remote else contextlib.nullcontext():
        try:
            if options.remote:  # also when no item trains: the closing `dvc repro --pull`'s
                check(dvc("remote", "default", "--local", options.remote), root)
            return run_steps(root, options, client)
        finally:
            if client is not None:
                client.close()


def run_steps(root: Path, options: Options, client) -> int:
    """The run's steps (docs/design.md, "The engine"): 1. the items' inputs here; 2. the items
    to train on Dask workers; 3. every stale item brought home from the run-cache; 4. `dvc
    repro` here, and dvc.lock settled in a serial run's order. ``client``: a scheduler's."""
    clear_last_run(root)
    plan = dvc_state.plan(root)
    if plan.input_stages and (code := repro_here(root, *plan.input_stages)):
        return code
    items = dvc_state.stale_items(root)
    workers = plan_workers(root, plan, items, options) if items.to_train else None
    trained = None  # how many of the items trained on the workers (None: no worker ran)
    if workers:
        if options.remote:
            dvc_state.push_for_workers(root, options.remote, plan.input_stages)
        trained = train_items(root, items, workers, options, client)
        if not_held := dvc_state.bring_home(root, items.stale, options.remote):
            raise EngineError(f"{len(not_held)} item(s) ran but their results are not in the "
                              f"run-cache: {', '.join(not_held)}")
    elif items.stale and not items.to_train:  # every stale item is in this run-cache: no worker
        dvc_state.bring_home(root, items.stale, None)
    say_items_done(items, trained)
    code = repro_here(root, *(("--pull",) if options.remote else ()))
    dvc_state.settle_lock(root, plan)  # also after a failure: the next run's plan.recorded is right
    return code


def check_remote(root: Path, remote: str) -> None:
    """EngineError unless ``remote`` is a DVC remote of ``root``."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            dvc_state.remote_url(repo, remote)
    except DvcException as e:
        raise EngineError(" ".join(str(e).split())) from None


@contextlib.contextmanager
def config_local_kept(root: Path):
    """.dvc/config.local put back as it was at the start (absent: removed), whatever the end."""
    path = root / ".dvc" / "config.local"
    kept = path.read_bytes() if path.is_file() else None
    try:
        yield
    finally:
        if kept is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(kept)


def clear_last_run(root: Path) -> None:
    """What an earlier run left: the local workspaces (a crashed run's), the items' logs."""
    try:
        reset(root / dvc_state.LOCAL_WORKSPACES)
        reset(root / cluster.ITEM_LOGS)
        (root / cluster.ITEM_LOGS).mkdir(parents=True)
    except OSError as e:
        raise EngineError(f"{e.filename}: {e.strerror}") from None


def repro_here(root: Path, *args: str) -> int:
    """`dvc repro ARGS` in this working tree, its output the user's: its exit code."""
    return subprocess.run(guarded(dvc("repro", *args)), cwd=root, env=stage_env()).returncode


def plan_workers(root: Path, plan: DvcPlan, items: ItemPlan, options: Options) -> Workers | None:
    """The workers of the items to train, once their checkpoints are known to fit on the disk;
    None for one local worker (one core or one item) without a remote: the closing `dvc
    repro` trains them, one at a time."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:  # a new index: the dry pass saved its stages' deps
        check_disk_space(repo, items.to_train)
        jobs = min(options.jobs or default_jobs(len(items.to_train)), len(items.to_train))
        if not options.remote and jobs < 2:
            return None
        tree = dvc_state.fingerprint(root)
        workspace = dvc_state.workspace_for(repo, tree, options.remote, options.workdir,
                                            items.to_train)
        return Workers(jobs, workspace, tree)


def check_disk_space(repo, items: tuple[str, ...]) -> None:
    """The search's check that its checkpoints fit on the disk (``grid.search.check_disk``),
    here once for the items to train: one line before any starts (each checks only itself)."""
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


def train_items(root: Path, items: ItemPlan, workers: Workers, options: Options,
                client) -> int:
    """The items to train as Dask tasks, their local workspaces removed after; EngineError if
    the working tree changed meanwhile (their results are for its files as they were). How
    many trained (the others came from a run-cache)."""
    try:
        results = cluster.run_items(root, items.to_train, workers.workspace, workers.jobs,
                                    options.scheduler, client)
    finally:
        reset(root / dvc_state.LOCAL_WORKSPACES)
    if changed := dvc_state.changed_since(root, workers.tree_before):
        raise EngineError(f"{', '.join(changed)} changed while the items ran: their results "
                          f"are for the files as they were; run again")
    return sum(result.trained for result in results)


def say_items_done(items: ItemPlan, trained: int | None) -> None:
    """One line: how many stale items are done, trained or restored (``trained`` None: none
    went to a worker, and those to train are left to the closing `dvc repro`)."""
    if items.stale:
        done = len(items.stale) - (len(items.to_train) if trained is None else 0)
        log(f"{done} of {len(items.stale)} items done ({trained or 0} trained, "
            f"{done - (trained or 0)} restored from the run-cache); now `dvc repro`")


if __name__ == "__main__":
    sys.exit(main())
