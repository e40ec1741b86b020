"""What a stage writes: its outputs checked writable first and removed if it fails (no partial
output), and the writers of JSON and CSV with no more digits than the arithmetic makes stable
(``SIGNIFICANT``).

No output holds a wall-clock time: timings go to ``timings/<stage>.json`` (``record_timing``),
which is neither a DVC output nor tracked by git, so rerunning a stage cannot change an output's
hash.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import numbers
import os
import shutil
import tempfile
from pathlib import Path

from fmnist_mlp.core.errors import DataError, StudyError, os_error

SIGNIFICANT = 6  # significant digits of every float written to a metrics, plots or item file
TIMINGS_DIR = Path("timings")


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
