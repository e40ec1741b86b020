"""Memory (fmnist_mlp/core/resources.py): what is available, psutil's figure capped by the
cgroup's limit, and sizes beyond it refused with the params key."""

from types import SimpleNamespace

import pytest

from fmnist_mlp.core import resources
from fmnist_mlp.core.errors import ConfigError


def test_memory_beyond_what_is_available_is_refused_with_the_key(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 2**30)
    resources.require_memory("scratch.hidden", 2**29)  # fits
    with pytest.raises(ConfigError, match=r"scratch.hidden: needs about 6.14e\+03 GiB of memory, "
                                          r"1 GiB available"):
        resources.require_memory("scratch.hidden", 6.14e3 * 2**30)


@pytest.mark.parametrize("limit, current, expected", [
    (None, None, 8), ("max", "1073741824", 8), (str(4 * 2**30), str(2**30), 3),
    (str(64 * 2**30), str(2**30), 8), ("garbage", "0", 8)])
def test_available_memory_is_psutils_capped_by_the_cgroup_limit(monkeypatch, tmp_path, limit,
                                                                current, expected):
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=8 * 2**30))
    monkeypatch.setattr(resources, "CGROUP", tmp_path)  # None: no cgroup v2 files
    if limit is not None:
        (tmp_path / "memory.max").write_text(limit + "\n")
        (tmp_path / "memory.current").write_text(current + "\n")
    assert resources.available_memory() == expected * 2**30


def test_available_memory_of_this_machine_is_positive():
    assert resources.available_memory() > 0
