"""Benchmarks, each run as ``python -m bench.<name>`` from the repository root: they measure the
code as the stages run it, under the numeric profile (fmnist_mlp/core/numerics.py)."""

from fmnist_mlp.core import numerics

numerics.apply()
