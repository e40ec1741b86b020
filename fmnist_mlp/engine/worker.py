"""What a Dask worker runs: one search item, `dvc repro --single-item search@…`, in the worker's
workspace (``Workspace``: a copy of the driver's working tree, made once per worker), and what
became of it (``ItemResult``); and what the driver shares with it: the engine's one error type,
its log line, and how it starts a command (dvc, git) so that the command dies with the thread
that started it (docs/design.md, "Process lifetime").

Only the standard library, Dask and distributed: a remote worker gets this module by value
(`cluster.connect` registers it with cloudpickle), so it needs no copy of the project;
pyproject.toml's import-linter contract checks it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MATRIX = "search"  # the matrix stage whose items run side by side
LINKED_INPUTS = ("data/prepared",)  # the items' big input: hard links in a local workspace
READY_MARKER = ".workspace-ready"  # written last in a workspace: it is complete
LARGE_FILE_BYTES = 2**20  # a larger file: hard-linked into a local workspace, not sent to a remote


class EngineError(Exception):
    """A failure of the run, said in one line."""


def log(message: str) -> None:
    """One line of the engine's to the user, on stderr."""
    print(f"repro: {message}", file=sys.stderr, flush=True)


def dvc(*args: str) -> list[str]:
    """The command line of `dvc ARGS` with this Python's DVC."""
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
        lines = (result.stdout + result.stderr).strip().splitlines() or ["(no output)"]
        command = " ".join([Path(argv[0]).name, *argv[1:6]])
        raise EngineError(f"`{command}` exited {result.returncode}: {lines[-1].strip()}")
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
    tree the items need, with their bytes (a cluster), or None: read from ``root`` when the
    workspace is made, copied, or hard-linked if over ``LARGE_FILE_BYTES`` (this machine: the
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
        """The workspace of ``worker``: made now unless a complete one is there."""
        directory = Path(self.base) / worker
        if not (directory / READY_MARKER).is_file():  # a half-made workspace is made again
            reset(directory)
            for name, data in self.files:
                (directory / name).parent.mkdir(parents=True, exist_ok=True)
                source = Path(self.root) / name if data is None else None
                if source and source.stat().st_size > LARGE_FILE_BYTES:
                    os.link(source, directory / name)  # read by the items only
                elif source:
                    shutil.copy(source, directory / name)  # DVC may rewrite it
                else:
                    (directory / name).write_bytes(data)
            for name in LINKED_INPUTS if self.root else ():
                shutil.copytree(Path(self.root) / name, directory / name, copy_function=os.link)
            check(["git", "init", "-q"], directory)
            if self.remote:
                check(dvc("remote", "add", "--local", "--default", *self.remote), directory)
            check(dvc("cache", "dir", "--local", self.cache), directory)
            (directory / READY_MARKER).touch()
        return directory


@dataclass(frozen=True)
class ItemResult:
    """What became of one item: its ``error`` (None: done); whether it ``trained`` (False:
    restored from a run-cache, or it failed first) and the training seconds its stages
    recorded; its log's text when the driver writes the log (a remote worker's), else None."""

    item: str
    error: str | None
    trained: bool = False
    train_seconds: float = 0.0
    log_text: str | None = None


def run_item(item: str, workspace: Workspace, stop_event: str,
             log_path: str | None) -> ItemResult:
    """One Dask task: ``item`` in this worker's workspace, its output in ``log_path`` (None: in
    the workspace, sent back in the result); with a remote, its results pushed to it. Its dvc
    stops when the Dask Event ``stop_event`` is set."""
    from distributed import Event, get_worker

    if Event(stop_event).is_set():
        return ItemResult(item, "stopped")
    directory = workspace.make(re.sub(r"\W", "-", str(get_worker().name)))
    timings = directory / "timings"  # a stage writes its timing only when it runs
    shutil.rmtree(timings, ignore_errors=True)
    log = Path(log_path) if log_path else directory / "item.log"
    code = run_dvc_item(item, directory, log, bool(workspace.remote),
                        stopped=lambda: Event(stop_event).is_set())
    output = log.read_text(errors="replace")
    error = failure(output, code)
    if error is None and workspace.remote:
        check(dvc("push", "--remote", workspace.remote[0], item), directory)
        check(dvc("push", "--remote", workspace.remote[0], "--run-cache"), directory)
    train = training_seconds(timings)
    return ItemResult(item, error, trained=bool(train), train_seconds=sum(train),
                      log_text=None if log_path else output)


def run_dvc_item(item: str, directory: Path, log: Path, pull: bool,
                 stopped: Callable[[], bool]) -> int:
    """`dvc repro --single-item ITEM` (``--pull`` with ``pull``) in ``directory``, its output in
    ``log`` (a new file: nothing of an earlier run writes into it), in a process group of its
    own: its exit code (negative: the signal that killed it). Its dvc dies with this process
    (PR_SET_PDEATHSIG); its group is killed once ``stopped()`` (asked each second), and once
    dvc has ended: whatever it left behind, its stage."""
    log.unlink(missing_ok=True)
    with log.open("w") as out:
        pulled = ("--pull",) if pull else ()
        process = subprocess.Popen(guarded(dvc("repro", "--single-item", *pulled, item)),
                                   cwd=directory, stdout=out, stderr=subprocess.STDOUT,
                                   env=stage_env(), start_new_session=True)
    try:
        while (code := process.poll()) is None:
            if stopped():
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return code


def training_seconds(timings: Path) -> list[float]:
    """The training seconds of each search stage that ran and recorded its timing in
    ``timings`` (none: the item came from a run-cache)."""
    seconds = []
    for path in timings.glob(f"{MATRIX}-*.json"):  # a stage killed while writing it: not counted
        with contextlib.suppress(OSError, ValueError, KeyError):
            seconds.append(json.loads(path.read_text())["train"])
    return seconds


def failure(output: str, code: int) -> str | None:
    """Why an item's `dvc repro` exited ``code`` (None: it did not fail), from its log
    ``output``: the signal that killed it; else the search stage's own one-line error, else
    DVC's last `ERROR:` line (a stage that crashed, DVC's own refusal), else the exit code."""
    if code < 0:
        names = {s.value: s.name for s in signal.Signals}
        return f"dvc was killed by {names.get(-code, f'signal {-code}')}"
    if code == 0:
        return None
    lines = [" ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", ln).split())
             for ln in output.splitlines()]  # no colours, one line
    for prefix in (f"{MATRIX}: error:", "ERROR:"):
        if said := [ln for ln in lines if ln.startswith(prefix)]:
            line = said[-1] if len(said[-1]) <= 400 else f"{said[-1][:400]}..."
            return line if prefix != "ERROR:" else f"dvc exited {code}: {line}"
    return f"dvc exited {code}"
