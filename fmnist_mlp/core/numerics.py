"""One numeric profile for every stage process: outputs are the same bytes on any x86-64 CPU.

OpenBLAS picks a kernel per CPU, numpy's loops and oneDNN's JIT (in TensorFlow) the widest ISA
found, and threads may split a sum differently: the profile pins them to AVX2 + FMA (x86-64-v3,
any x86-64 CPU since 2013-2015) on one thread. Every stage script's first import,
``fmnist_mlp.core.startup``, applies it before numpy, scipy or TensorFlow load.
"""

import contextlib
import os
import sys
import warnings

PROFILE = {
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's OpenBLAS: the AVX2 kernels
    "OPENBLAS_NUM_THREADS": "1",  # no threaded split of a product
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's own loops: AVX2 (X86_V3)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # TensorFlow's oneDNN kernels
    "TF_ENABLE_ONEDNN_OPTS": "1",  # oneDNN's matmul is thread-count independent; Eigen's is not
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}
REQUIRED_FLAGS = ("avx2", "fma")  # /proc/cpuinfo names of what the profile's kernels use
outer_environ: dict[str, str] = {}  # the environment as it was before apply(), for benches


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags; none if ``cpuinfo`` cannot be read or has no flags line."""
    with contextlib.suppress(OSError), open(cpuinfo) as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def apply(environ=os.environ) -> None:
    """Put the profile into ``environ``; exit with one line on a CPU that cannot run it."""
    loaded = [m for m in ("numpy", "scipy", "tensorflow") if m in sys.modules]
    if loaded:
        raise RuntimeError(f"numeric profile applied after {', '.join(loaded)} loaded")
    flags = cpu_flags()
    missing = [f for f in REQUIRED_FLAGS if flags and f not in flags]
    if missing:
        sys.exit(f"error: this CPU lacks {', '.join(missing)}; the numeric profile "
                 f"(fmnist_mlp/core/numerics.py) needs an x86-64-v3 CPU (AVX2 + FMA)")
    outer_environ.update(environ)
    environ.update(PROFILE)
    # numpy warns at import about disabling features this CPU does not have: harmless here.
    warnings.filterwarnings("ignore", message=".*NPY_DISABLE_CPU_FEATURES.*",
                            category=RuntimeWarning)
