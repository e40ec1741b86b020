"""One numeric profile for every stage process: outputs are the same bytes on any x86-64 CPU.

Floating-point results depend on which code path computes them: OpenBLAS picks a kernel per CPU
(Haswell, SkylakeX, Zen...), numpy dispatches its SIMD loops to AVX2 or AVX-512, oneDNN (inside
TensorFlow) JIT-compiles for the widest ISA it finds, and a threaded reduction may split a sum
differently on another core count. The profile pins all of them to an AVX2 + FMA baseline
(x86-64-v3, every x86-64 CPU since 2013-2015) on one thread per library. It must be in the
environment before numpy, scipy or TensorFlow load: every stage script imports
``fmnist_mlp.core.startup`` first, which applies it.
"""

from __future__ import annotations

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
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
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
