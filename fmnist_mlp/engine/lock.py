"""One engine run per workspace: a file lock (filelock: the kernel's flock, so a killed run holds
it no more) and the PID file that names the run holding it to a run refused."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from fmnist_mlp.engine.worker import EngineError

DVC_TMP = Path(".dvc/tmp")  # ignored by git and by DVC
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
    """Whether process ``pid`` runs (a zombie counts)."""
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

    tmp, pid = root / DVC_TMP, root / DVC_TMP / "repro.pid"
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

