"""TensorFlow's C++ log lines go to a file, not to the terminal.

Its runtime writes to fd 2 before Python's logging exists (absl's pre-init log: ``I0000 ... oneDNN
custom operations are on``, ``E0000 ... failed call to cuInit``), which ``TF_CPP_MIN_LOG_LEVEL``
does not stop. ``capture`` points fd 2 at ``logs/<name>.log`` and ``sys.stderr`` at the terminal:
the stage's lines, tracebacks and crashes (faulthandler) still show, and at exit so does each error
or fatal line of the log that is not KNOWN to be harmless, with the log's path.
"""

import atexit
import faulthandler
import os
import re
import sys
from pathlib import Path

LOG_DIR = Path("logs")
SEVERE = re.compile(r"^[EF]\d{4} ")  # absl's error and fatal lines: E0000 00:00:... file.cc:52]
# Harmless on a CPU-only machine: TensorFlow looks for CUDA; tf.data's graph attribute.
KNOWN = ("failed call to cuInit", "NodeDef mentions attribute use_unbounded_threadpool")


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
        for line in lines + ([f"the whole log is in {path}"] if lines else []):
            print(f"tensorflow: {line}", file=sys.stderr)
        sys.stderr.flush()

    atexit.register(report)
    return path
