"""Benchmarks, each run as ``python -m bench.<name>`` from the repository root: they measure the
code as the stages run it, under the numeric profile (fmnist_mlp/profile.py)."""

from fmnist_mlp import profile

profile.apply()
