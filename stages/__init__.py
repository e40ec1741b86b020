"""The stage scripts, one per box of `dvc dag`, each run as ``python -m stages.<name>``.

Running them as modules of this package does three things before any of them imports numpy:
- ``fmnist_mlp`` is imported from the directory the stage runs in (``-m`` puts it first on
  sys.path), so a `dvc exp run --temp` or queued experiment runs its own copy of the library;
- the numeric profile (fmnist_mlp/profile.py) is applied, so outputs are the same bytes on any
  x86-64 CPU;
- Ctrl-C while the libraries load ends the stage with one line (stage.run takes over in main).
`python stages/<name>.py`, as DVC's tutorials run a stage, works too: the script runs itself as
the module (``run_as_module``). No stage file is named after a standard-library module.
"""

import os
import signal
import sys
from pathlib import Path

from fmnist_mlp import profile

profile.apply()


def _interrupted(signum, frame):
    print(f"{Path(sys.argv[0]).stem}: interrupted", file=sys.stderr)
    os._exit(130)


signal.signal(signal.SIGINT, _interrupted)


def run_as_module(file: str) -> None:
    """Run the stage script ``file`` (stages/<name>.py) as ``python -m stages.<name>`` would, in
    this process: what `python stages/<name>.py` does."""
    import runpy

    runpy.run_module(f"stages.{Path(file).stem}", run_name="__main__", alter_sys=True)
    sys.exit(0)
