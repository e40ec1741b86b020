"""The driver's DVC bookkeeping, through DVC's Python API: DVC's plan of the run (``DvcPlan``),
the stale items and those the run-cache holds (``ItemPlan``), the files a worker's workspace
needs, the return step (``bring_home``) and dvc.lock settled in a serial run's order
(``settle_lock``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from fmnist_mlp.engine.lock import DVC_TMP
from fmnist_mlp.engine.worker import (
    LARGE_FILE_BYTES,
    MATRIX,
    EngineError,
    Workspace,
    check,
    dvc,
    guarded,
    log,
)

LOCAL_WORKSPACES = DVC_TMP / "repro"  # the local workers' copies (ignored by git and DVC)
REMOTE_WORKDIR = Path("/tmp/fmnist-cluster")  # the remote workers' copies without --workdir
DVC_AND_GIT_FILES = {"dvc.yaml", "dvc.lock", "params.yaml", ".dvcignore", ".gitignore"}


@dataclass(frozen=True)
class DvcPlan:
    """DVC's plan of a plain `dvc repro`: its stages in the order it runs and records them
    (``order``), the stages whose outputs the items read among them (``input_stages``), and
    the stages dvc.lock records before the run (``recorded``)."""

    order: tuple[str, ...]
    input_stages: tuple[str, ...]
    recorded: frozenset[str]


@dataclass(frozen=True)
class ItemPlan:
    """The search items DVC finds stale; of those, the ones the run-cache does not hold (or
    frozen), to train."""

    stale: tuple[str, ...]
    to_train: tuple[str, ...]


def plan(root: Path) -> DvcPlan:
    """DVC's plan of a plain `dvc repro` in ``root``, before anything runs."""
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
            return DvcPlan(tuple(names), tuple(n for s, n in zip(steps, names) if s in needs),
                           frozenset(load_yaml(lock).get("stages", {}) if lock.is_file() else ()))
    except DvcException as e:
        raise EngineError(" ".join(str(e).split())) from None


def stale_items(root: Path) -> ItemPlan:
    """The items DVC finds stale (``Repo.status()``, once their inputs are up to date), and of
    those the ones to train: a dry pass of the run-cache, nothing restored."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stale = tuple(name for name in repo.status() if name.startswith(f"{MATRIX}@"))
        to_train = []
        with quiet_dvc(), repo.lock, repo.scm_context:
            for stage in stages_of(repo, stale):
                try:
                    if stage.frozen or not in_run_cache(repo, stage):
                        to_train.append(stage.addressing)
                except DvcException as e:
                    raise EngineError(f"{stage.addressing}: {' '.join(str(e).split())}") from None
    return ItemPlan(stale, tuple(to_train))


def in_run_cache(repo, stage) -> bool:
    """Whether the run-cache holds the entry DVC's restore of ``stage`` would find: its dry run
    keys on the deps as they were, so they are saved first (in this index only)."""
    stage.save_deps()
    return bool(repo.stage_cache._load(stage))


def bring_home(root: Path, items: tuple[str, ...], remote: str | None) -> list[str]:
    """The return step: ``items`` restored from the run-cache (with ``remote``, pulled from it)
    as `dvc repro` restores a stage (its old outputs removed, the cached ones checked out, saved
    and committed), in dvc.yaml's order, and recorded in dvc.lock in one write; the items the
    run-cache does not hold (or frozen: `dvc repro` checks those), left to train. `dvc repro`
    rewrites dvc.lock once a stage: O(items^2)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.stage.cache import RunCacheNotFoundError
    from tqdm import tqdm

    with Repo(str(root)) as repo, quiet_dvc(), repo.lock, repo.scm_context:
        if remote and items:
            repo.stage_cache.pull(remote)
        restored, not_held = [], []
        stages = stages_of(repo, items)
        for stage in tqdm(stages, f"{MATRIX} items from the run-cache", unit="item",
                          leave=False, disable=len(stages) < 2):
            try:
                if stage.frozen:
                    raise RunCacheNotFoundError(stage)
                stage.remove_outs(ignore_remove=False, force=False)
                repo.stage_cache.restore(stage, pull=bool(remote))
                stage.save(run_cache=False)  # the entry it came from
                stage.commit()
            except RunCacheNotFoundError:
                not_held.append(stage.addressing)
                continue
            except DvcException as e:
                raise EngineError(f"{stage.addressing}: {' '.join(str(e).split())}") from None
            restored.append(stage)
        if restored:
            restored[0].dvcfile.dump_stages(restored, update_pipeline=False)
    return not_held


def stages_of(repo, items: tuple[str, ...]) -> list:
    """The stages of ``items``, in dvc.yaml's order."""
    wanted = set(items)
    return [stage for stage in repo.index.stages if stage.addressing in wanted]


@contextlib.contextmanager
def quiet_dvc():
    """DVC's logger at WARNING while it lasts: a line per item would break the progress bar."""
    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)  # also when an item fails


def working_tree(root: Path) -> list[str]:
    """The files of a fresh clone with this tree's edits: tracked and not-ignored files."""
    listed = check(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], root)
    return [name for name in dict.fromkeys(listed.split("\0")) if (root / name).is_file()]


def fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    """Each file of the working tree, by its name: its size and modification time."""
    return {name: ((s := (root / name).stat()).st_size, s.st_mtime_ns)
            for name in working_tree(root)}


def changed_since(root: Path, before: dict[str, tuple[int, int]]) -> list[str]:
    """The files of the working tree added, removed or changed since its ``fingerprint``
    ``before``."""
    now = fingerprint(root)
    return sorted(name for name in before | now if before.get(name) != now.get(name))


def needed(repo, tree, items: tuple[str, ...]) -> list[str]:
    """The files of ``tree`` a worker's copy of the items ``items`` needs: git's tracked ones (a
    fresh clone's), and of the untracked ones, DVC's and git's own (``DVC_AND_GIT_FILES``,
    .dvc/; the params a dvc.yaml interpolates are no stage's dep), those the items depend on
    (their deps and params files) and the ``__init__.py`` of the packages above them (without
    it, a package of the installed project would be imported instead)."""
    root = Path(repo.root_dir)
    tracked = set(check(["git", "ls-files", "-z", "--cached"], root).split("\0"))
    wanted = set(items)
    deps = {Path(os.path.relpath(dep.fs_path, root)).as_posix() for stage in repo.index.stages
            if getattr(stage, "name", stage.addressing) in wanted for dep in stage.deps}
    above = {parent.as_posix() for dep in deps for parent in Path(dep).parents}
    return [name for name in tree
            if name in tracked or Path(name).name in DVC_AND_GIT_FILES or name.startswith(".dvc/")
            or any(name == dep or name.startswith(f"{dep}/") for dep in deps)
            or (Path(name).name == "__init__.py" and Path(name).parent.as_posix() in above)]


def workspace_for(repo, tree: dict[str, tuple[int, int]], remote: str | None,
                  workdir: str | None, items: tuple[str, ...]) -> Workspace:
    """What the workers of ``items`` get: the files of ``tree`` (``fingerprint``'s) they need;
    with ``remote``, their bytes, sent to each worker (``push_for_workers`` puts the data on the
    remote)."""
    root, cache = Path(repo.root_dir), repo.cache.local_cache_dir
    names = needed(repo, tree, items)
    if not remote:  # read from this tree when a workspace is made: no bytes held here
        return Workspace(str(root / LOCAL_WORKSPACES), tuple((name, None) for name in names),
                         cache, root=str(root))
    files = tuple((name, None if tree[name][0] > LARGE_FILE_BYTES else (root / name).read_bytes())
                  for name in names)
    url = remote_url(repo, remote)
    if large := [name for name, data in files if data is None]:
        log(f"not sent to the workers (over {LARGE_FILE_BYTES} bytes): {', '.join(large)}")
    base = Path(workdir) if workdir else REMOTE_WORKDIR
    return Workspace(str(base / uuid.uuid4().hex), tuple(f for f in files if f[1] is not None),
                     str(base / "dvc-cache"), remote=(remote, url))


def push_for_workers(root: Path, remote: str, input_stages: tuple[str, ...]) -> None:
    """What remote workers pull before their items: the outputs of ``input_stages`` and this
    run-cache, pushed to ``remote``."""
    check(dvc("push", "--remote", remote, *input_stages), root)
    check(dvc("push", "--remote", remote, "--run-cache"), root)


def remote_url(repo, remote: str) -> str:
    """The URL of the DVC remote ``remote`` of ``repo``, or EngineError."""
    url = repo.config["remote"].get(remote, {}).get("url")
    if not url:
        raise EngineError(f"--remote {remote}: no such DVC remote; add one with "
                          f"`dvc remote add {remote} URL` (an ssh:// URL or a shared directory; "
                          f"docs/cluster.md)")
    return url


def settle_lock(root: Path, plan: DvcPlan) -> None:
    """dvc.lock as a serial `dvc repro` leaves it: the stages ``plan`` found recorded before the
    run in their places, the new ones after them in the order of its plan (DVC appends a stage
    as it records it); re-staged if DVC's autostage had staged it."""
    from dvc.utils.serialize import modify_yaml

    lock = root / "dvc.lock"
    new = [name for name in plan.order if name not in plan.recorded]
    if not new or not lock.is_file():  # nothing recorded this run can be out of place
        return
    text = lock.read_text()
    with modify_yaml(lock) as data:  # DVC's own writer of dvc.lock
        for name in new:
            if name in data["stages"]:
                data["stages"].move_to_end(name)
    if lock.read_text() != text and subprocess.run(
            guarded(["git", "diff", "--cached", "--quiet", "--", "dvc.lock"]),
            cwd=root).returncode == 1:
        check(["git", "add", "dvc.lock"], root)  # DVC's autostage had staged it
