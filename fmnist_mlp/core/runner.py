"""What every stage script shares: error reporting, clean-up of partial outputs, small writers.

Outputs are written with no more digits than the arithmetic makes stable (``SIGNIFICANT``), and
never with a wall-clock time in them: timings go to ``timings/<stage>.json`` (``record_timing``),
which is neither a DVC output nor tracked by git, so rerunning a stage cannot change an output's
hash.
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import json
import math
import numbers
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from fmnist_mlp.core.errors import ConfigError, DataError, StudyError

SIGNIFICANT = 6  # significant digits of every float written to a metrics, plots or item file
TIMINGS_DIR = Path("timings")


def usage(module_doc: str | None) -> str:
    """The docstring's ``Usage:`` line with its indented continuation lines, as one line."""
    lines = (module_doc or "").splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("Usage:")), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")),
               len(lines))
    return " ".join(" ".join(ln.split()) for ln in lines[start:end])


def stage_name(doc: str | None) -> str:
    """The stage's name as `dvc dag` shows it: the docstring's first word (``select: ...``)."""
    first = (doc or "").split(":", 1)[0].strip()
    return first if first.isidentifier() else Path(sys.argv[0]).stem


def run(main, doc: str | None = None) -> None:
    """Call ``main(*sys.argv[1:])`` as a stage: ``-h``/``--help`` prints the docstring (exit 0);
    one line on stderr and a non-zero exit for a StudyError, an operating-system error (a
    read-only or full disk...) or memory that runs out (1), the wrong number of arguments or an
    unknown option (2, with the usage) or Ctrl-C (130)."""
    name = stage_name(doc)
    argv = sys.argv[1:]
    if "-h" in argv or "--help" in argv:
        print((doc or "").strip())
        sys.exit(0)
    params = list(inspect.signature(main).parameters.values())
    free = any(p.kind is p.VAR_POSITIONAL for p in params)  # main parses its own options
    option = next((a for a in argv if a.startswith("-") and len(a) > 1), None)
    if not free and option:
        print(f"{name}: error: unknown option {option} (paths only). {usage(doc)}",
              file=sys.stderr)
        sys.exit(2)
    if not free and len(argv) != len(params):
        print(f"{name}: error: expected {len(params)} arguments, got {len(argv)}. "
              f"{usage(doc)}", file=sys.stderr)
        sys.exit(2)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt below
    try:
        main(*argv) if free else main(*map(Path, argv))
    except StudyError as e:
        fail(name, str(e))
    except OSError as e:
        fail(name, os_error(e))
    except MemoryError as e:
        fail(name, f"out of memory ({' '.join(str(e).split()) or 'MemoryError'}); lower the "
                   f"sizes in params.yaml")
    except KeyboardInterrupt:
        print(f"{name}: interrupted; partial outputs removed", file=sys.stderr)
        sys.exit(130)


def fail(name: str, message: str) -> None:
    print(f"{name}: error: {message}", file=sys.stderr)
    sys.exit(1)


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
    less available (MemAvailable, or the cgroup's limit if lower): refused before allocating,
    instead of swapping or being killed."""
    have = available_memory()
    if have is not None and need > have:
        raise ConfigError(f"{key}: needs about {gib(need)} of memory, {gib(have)} available; "
                          f"choose smaller sizes")


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and cgroup cpusets
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup v2 limit."""
    have = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                have = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            have = min(have or 2**63, int(limit) - used)
    except (OSError, ValueError):
        pass
    return have


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
