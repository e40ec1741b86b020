"""What every stage script shares: its command line, error reporting, clean-up of partial outputs,
small writers.

Outputs are written with no more digits than the arithmetic makes stable (``SIGNIFICANT``), and
never with a wall-clock time in them: timings go to ``timings/<stage>.json`` (``record_timing``),
which is neither a DVC output nor tracked by git, so rerunning a stage cannot change an output's
hash.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import json
import math
import numbers
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import psutil

from fmnist_mlp.core.errors import ConfigError, DataError, StudyError

SIGNIFICANT = 6  # significant digits of every float written to a metrics, plots or item file
TIMINGS_DIR = Path("timings")
CGROUP = Path("/sys/fs/cgroup")  # this process's cgroup v2, as a container sees it


def run(main, doc: str | None = None, options=None) -> None:
    """Run ``main`` as the stage ``python -m stages.<script>``, one path argument per parameter
    (``PREPARED_DIR`` for ``prepared_dir``); with ``options`` (the search stage's Trial), its
    flags too (``options.add_arguments(parser)``), passed to ``main`` as one last argument,
    ``options(**flags)``. ``-h``/``--help`` prints the usage and the docstring (exit 0); a wrong
    number of arguments or an unknown option, the usage and one error line (exit 2, before any
    work). Then one line on stderr for a StudyError, an operating-system error (a read-only or
    full disk...) or memory that runs out (exit 1), or Ctrl-C (exit 130). Every line names the
    stage as `dvc dag` does: the docstring's first word (``select: error: ...``)."""
    script = Path(sys.argv[0]).stem
    name = re.match(r"\w*", doc or "")[0] or script
    parser = argparse.ArgumentParser(prog=f"python -m stages.{script}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.error = lambda message: parser.exit(
        2, f"{parser.format_usage()}{name}: error: {message}\n")
    paths = list(inspect.signature(main).parameters)[:-1 if options else None]
    for path in paths:
        parser.add_argument(path, type=Path, metavar=path.upper())
    if options:
        options.add_arguments(parser)
    flags = vars(parser.parse_args())
    args = [flags.pop(path) for path in paths] + ([options(**flags)] if options else [])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt below
    try:
        main(*args)
    except StudyError as e:
        sys.exit(f"{name}: error: {e}")
    except OSError as e:
        sys.exit(f"{name}: error: {os_error(e)}")
    except MemoryError as e:
        sys.exit(f"{name}: error: out of memory ({' '.join(str(e).split()) or 'MemoryError'}); "
                 f"lower the sizes in params.yaml")
    except KeyboardInterrupt:
        print(f"{name}: interrupted; partial outputs removed", file=sys.stderr)
        sys.exit(130)


def os_error(e: OSError, paths=()) -> str:
    """``PATH: reason`` of an operating-system error (the outputs' paths when it names none)."""
    where = e.filename or ", ".join(map(str, paths)) or "a file"
    reason = e.strerror or str(e) or type(e).__name__
    return f"{where}: {reason}" + (f" (errno {e.errno})" if e.errno else "")


def remove(*paths: str | Path) -> None:
    """Remove files and directories; what cannot be removed (a read-only disk) is left as is."""
    for path in map(Path, paths):
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def check_writable(*paths: str | Path) -> None:
    """StudyError naming the path unless each of ``paths`` can be written: its nearest existing
    ancestor is a directory where a file can be created (a read-only disk, a missing permission
    or a regular file on the way fail here, before any work). Nothing is left behind."""
    for path in map(Path, paths):
        if path.exists() and not os.access(path, os.W_OK):
            raise StudyError(f"{path}: cannot write (permission denied)")
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise StudyError(f"{path}: cannot write ({parent} is not a directory)")
        try:
            fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=parent)
        except OSError as e:
            raise StudyError(f"{path}: cannot write ({e.strerror or e})") from None
        os.close(fd)
        os.unlink(probe)


@contextlib.contextmanager
def outputs(*paths: str | Path):
    """Check that ``paths`` can be written, then run the block; remove ``paths`` if it raises
    (Ctrl-C included), so a failed stage leaves no partial output. An operating-system error
    (a full disk) becomes one line naming the path."""
    check_writable(*paths)
    try:
        yield
    except OSError as e:
        remove(*paths)
        raise StudyError(os_error(e, paths)) from None
    except BaseException:
        remove(*paths)
        raise


def require_memory(key: str, need: float) -> None:
    """ConfigError naming ``key`` when a stage needs about ``need`` bytes and this machine has
    less available (``available_memory``): refused before allocating, instead of swapping or
    being killed."""
    have = available_memory()
    if need > have:
        raise ConfigError(f"{key}: needs about {gib(need)} of memory, {gib(have)} available; "
                          f"choose smaller sizes")


def available_memory() -> int:
    """Bytes this process can still allocate: the machine's available memory, capped by a
    cgroup v2 limit (a container's), which psutil does not read."""
    have = psutil.virtual_memory().available
    with contextlib.suppress(OSError, ValueError):
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            have = min(have, int(limit) - int((CGROUP / "memory.current").read_text()))
    return have


def gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and cgroup cpusets
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def stable(value, exact: bool = False):
    """``value`` with every float rounded to SIGNIFICANT digits (nested dicts and lists), or
    kept at full precision if ``exact``; a non-finite float is an error, never written."""
    if isinstance(value, dict):
        return {k: stable(v, exact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stable(v, exact) for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):  # numpy too
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"non-finite value {value} in an output")
        return value if exact else float(f"{value:.{SIGNIFICANT}g}")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def _stable(path: Path, value, exact: bool = False):
    try:
        return stable(value, exact)
    except ValueError as e:
        raise StudyError(f"{path}: {e}") from None


def write_json(path: str | Path, obj: dict, exact: bool = False) -> None:
    """``obj`` as JSON, floats to SIGNIFICANT digits; ``exact`` keeps them whole (figures that a
    later stage computes with, inside cached outputs; never a shown metric)."""
    path = Path(path)
    text = json.dumps(_stable(path, obj, exact), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_csv(path: str | Path, rows: list[dict], columns: tuple[str, ...] | None = None) -> None:
    """``rows`` under a header of ``columns`` (default: the first row's keys)."""
    path = Path(path)
    rows = _stable(path, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns or rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_json(path: str | Path) -> dict:
    """A JSON file an earlier stage wrote; DataError naming it if it is missing or corrupt."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None


def record_timing(name: str, **seconds: float) -> None:
    """timings/<name>.json: wall-clock seconds of a run, for the README and benches only."""
    write_json(TIMINGS_DIR / f"{name}.json", {k: round(v, 3) for k, v in seconds.items()})


def log(name: str, message: str) -> None:
    print(f"{name}: {message}", file=sys.stderr)
