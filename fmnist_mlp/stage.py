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
import shutil
import signal
import sys
from pathlib import Path

from fmnist_mlp.errors import DataError, StudyError

SIGNIFICANT = 6  # significant digits of every float written to a metrics, plots or item file
TIMINGS_DIR = Path("timings")


def _usage(module_doc: str | None) -> str:
    lines = [ln.strip() for ln in (module_doc or "").splitlines()]
    return next((ln for ln in lines if ln.startswith("Usage:")), "")


def run(main, doc: str | None = None) -> None:
    """Call ``main(*sys.argv[1:])`` as a stage: one line on stderr and a non-zero exit for a
    StudyError (1), the wrong number of arguments (2, with the usage line) or Ctrl-C (130)."""
    name = Path(sys.argv[0]).stem
    argv = sys.argv[1:]
    params = list(inspect.signature(main).parameters.values())
    free = any(p.kind is p.VAR_POSITIONAL for p in params)  # main parses its own options
    if not free and len(argv) != len(params):
        print(f"{name}: error: expected {len(params)} arguments, got {len(argv)}. "
              f"{_usage(doc)}", file=sys.stderr)
        sys.exit(2)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt below
    try:
        main(*argv) if free else main(*map(Path, argv))
    except StudyError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; partial outputs removed", file=sys.stderr)
        sys.exit(130)


def remove(*paths: str | Path) -> None:
    """Remove files and directories; what cannot be removed (a read-only disk) is left as is."""
    for path in map(Path, paths):
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


@contextlib.contextmanager
def outputs(*paths: str | Path):
    """Remove ``paths`` if the block raises (Ctrl-C included), so a failed stage leaves no
    partial output."""
    try:
        yield
    except BaseException:
        remove(*paths)
        raise


def stable(value):
    """``value`` with every float rounded to SIGNIFICANT digits (nested dicts and lists);
    a non-finite float is an error, never written."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stable(v) for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):  # numpy too
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"non-finite value {value} in an output")
        return float(f"{value:.{SIGNIFICANT}g}")
    return value


def _stable(path: Path, value):
    try:
        return stable(value)
    except ValueError as e:
        raise StudyError(f"{path}: {e}") from None


def write_json(path: str | Path, obj: dict) -> None:
    path = Path(path)
    text = json.dumps(_stable(path, obj), indent=2) + "\n"
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
