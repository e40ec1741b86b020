"""The venv `make setup` builds (uv pip sync) holds exactly requirements.lock's packages, at the
lock's versions, plus the project itself in editable mode: nothing missing, nothing more."""

import re
from importlib import metadata

from conftest import ROOT


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def pinned(text: str) -> dict[str, str]:
    """requirements.lock's ``name==version`` lines (comments and blank lines aside)."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"requirements.lock: {line!r} is not name==version"
            pins[canonical(name)] = version
    return pins


def test_the_venv_holds_exactly_the_locks_packages():
    lock = pinned((ROOT / "requirements.lock").read_text())
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    project = installed.pop("fmnist-mlp", None)
    assert project is not None, "the project is not installed (make setup: uv pip install -e .)"
    missing = sorted(f"{n}=={v}" for n, v in lock.items() if n not in installed)
    extra = sorted(f"{n}=={v}" for n, v in installed.items() if n not in lock)
    other = sorted(f"{n}: {installed[n]} (lock {v})" for n, v in lock.items()
                   if n in installed and installed[n] != v)
    assert (missing, extra, other) == ([], [], []), "the venv is not requirements.lock"


def test_uv_itself_is_pinned_in_the_lock():
    """make setup installs the uv the lock names (grep -x 'uv==...'): exactly one such line."""
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    assert len([ln for ln in lines if re.fullmatch(r"uv==[0-9][^ ]*", ln)]) == 1
