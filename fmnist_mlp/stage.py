"""What every stage script shares: error reporting, clean-up of partial outputs, small writers."""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import sys
from pathlib import Path

from fmnist_mlp.errors import StudyError


def run(name: str, main, argv: list[str] | None = None) -> None:
    """Call ``main(argv)``; a StudyError becomes one line on stderr and exit status 1."""
    try:
        main(sys.argv[1:] if argv is None else argv)
    except StudyError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(1)


@contextlib.contextmanager
def outputs(*paths: str | Path):
    """Remove ``paths`` if the block raises, so a failed stage leaves no partial output."""
    try:
        yield
    except BaseException:
        for path in map(Path, paths):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def write_csv(path: str | Path, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def log(name: str, message: str) -> None:
    print(f"{name}: {message}", file=sys.stderr)
