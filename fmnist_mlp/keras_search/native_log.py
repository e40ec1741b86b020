"""TensorFlow's C++ log lines go to a file, not to the terminal.

TensorFlow's C++ runtime writes to file descriptor 2 before Python's logging exists (absl's
"pre-init" log: ``I0000 ... oneDNN custom operations are on``, ``E0000 ... failed call to
cuInit``), and ``TF_CPP_MIN_LOG_LEVEL`` does not stop those. ``capture`` points fd 2 at
``logs/<name>.log`` and gives Python's ``sys.stderr`` a copy of the original fd 2, so the stage's
own lines, progress bars, warnings and tracebacks still reach the terminal.

Nothing real is hidden: at exit, every error or fatal line of the log (``E``/``F`` + 4 digits)
that is not one of the known harmless ones (KNOWN) is copied to the terminal with the log's path,
and a crash (SIGSEGV, SIGABRT) prints Python's traceback there (faulthandler).
"""

from __future__ import annotations

import atexit
import faulthandler
import os
import re
import sys
from pathlib import Path

LOG_DIR = Path("logs")
SEVERE = re.compile(r"^[EF]\d{4} ")  # absl's error and fatal lines: E0000 00:00:... file.cc:52]
KNOWN = (  # harmless on a CPU-only machine: TensorFlow looks for CUDA; tf.data's graph attribute
    "failed call to cuInit",
    "NodeDef mentions attribute use_unbounded_threadpool",
)


def severe_lines(text: str) -> list[str]:
    """The error and fatal lines of a log that are not KNOWN to be harmless."""
    return [line for line in text.splitlines()
            if SEVERE.match(line) and not any(k in line for k in KNOWN)]


def capture(name: str, log_dir: Path = LOG_DIR) -> Path:
    """Send fd 2 to ``log_dir/<name>.log`` (new each run) for the rest of the process; returns
    the log's path. Call it before TensorFlow loads."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{name}.log"
    sys.stderr.flush()
    terminal = os.dup(2)  # the original stderr
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 2)
    os.close(log)
    sys.stderr = open(terminal, "w", buffering=1, errors="backslashreplace")  # noqa: SIM115
    faulthandler.enable(sys.stderr)

    def report() -> None:
        try:
            lines = severe_lines(path.read_text(errors="replace"))
        except OSError:
            return
        for line in lines:
            print(f"tensorflow: {line}", file=sys.stderr)
        if lines:
            print(f"tensorflow: the whole log is in {path}", file=sys.stderr)
        sys.stderr.flush()

    atexit.register(report)
    return path
