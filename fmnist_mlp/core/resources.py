"""What this machine lends a stage: the memory it may still allocate (a container's cgroup
limit included) and the cores it may run on; a stage that needs more memory than there is is
refused before it allocates."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil

from fmnist_mlp.core.errors import ConfigError

CGROUP = Path("/sys/fs/cgroup")  # this process's cgroup v2, as a container sees it


def require_memory(key: str, need: float) -> None:
    """ConfigError naming ``key`` when a stage needs about ``need`` bytes and this machine has
    less available (``available_memory``): refused before allocating, instead of swapping or
    being killed."""
    have = available_memory()
    if need > have:
        raise ConfigError(f"{key}: needs about {gib(need)} of memory, {gib(have)} available; "
                          f"choose smaller sizes")


def available_memory() -> int:
    """Bytes this process can still allocate: the machine's available memory, capped by a
    cgroup v2 limit (a container's), which psutil does not read."""
    have = psutil.virtual_memory().available
    with contextlib.suppress(OSError, ValueError):
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            have = min(have, int(limit) - int((CGROUP / "memory.current").read_text()))
    return have


def gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and cgroup cpusets
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
