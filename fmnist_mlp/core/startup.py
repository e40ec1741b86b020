"""Imported first by every stage script, before numpy loads: the numeric profile
(``numerics.apply``) and a one-line Ctrl-C while the libraries load (``cli.run`` takes over
in ``main``). A stage also dies with the process that started it (a killed ``dvc``), so no
orphan trains on."""

import ctypes
import os
import signal
import sys
from pathlib import Path

from fmnist_mlp.core import numerics

numerics.apply()

if sys.platform == "linux":  # PR_SET_PDEATHSIG (1): SIGKILL when the parent dies
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the line above
        os._exit(137)


def _interrupted(signum, frame):
    print(f"{Path(sys.argv[0]).stem}: interrupted", file=sys.stderr)
    os._exit(130)


signal.signal(signal.SIGINT, _interrupted)
