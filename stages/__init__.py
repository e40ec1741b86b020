"""The stage scripts, one per box of `dvc dag`, each run as ``python -m stages.<name>``.

Running them as modules of this package does two things before any of them imports numpy:
- ``fmnist_mlp`` is imported from the directory the stage runs in (``-m`` puts it first on
  sys.path), so a `dvc exp run --temp` or queued experiment runs its own copy of the library;
- the numeric profile (fmnist_mlp/profile.py) is applied, so outputs are the same bytes on any
  x86-64 CPU.
"""

from fmnist_mlp import profile

profile.apply()
