import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path("/usr/share/datasets/fashion-mnist")


def section(cls, **overrides):
    """The committed params.yaml's section of ``cls``, with ``overrides``, validated."""
    from fmnist_mlp.core.params import read_params

    return cls.from_dict({**read_params(ROOT / "params.yaml")[cls.SECTION], **overrides})


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


LOCAL_SETUP = (".dvc/config.local", ".dvc/plots_page.html")  # what `make setup` adds locally


def copy_project(dest: Path) -> Path:
    """The working tree as a fresh clone would have it (git's tracked and not-ignored files, no
    data, models, caches or venv), plus the local set-up, as a new git+DVC repo."""
    from fmnist_mlp.engine.repro import working_tree

    for name in [*working_tree(ROOT), *LOCAL_SETUP]:
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def run_dvc(repo: Path, *args: str, check: bool = True,
            env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               **(env or {}))
    result = subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


needs_dataset = pytest.mark.skipif(
    not PACKAGE_DIR.is_dir() and not os.environ.get("CI"),
    reason=f"real Fashion-MNIST not installed at {PACKAGE_DIR} (make test installs it)",
)


ACTIVATION_NAMES = ("relu", "tanh", "sigmoid")  # every entry of spec.ACTIVATIONS (a test checks)


def net(sizes, activation="relu", l2_output=True):
    """The MLPSpec of layer widths ``sizes`` (tests only; stages build theirs from params)."""
    from fmnist_mlp.core.spec import MLPSpec

    return MLPSpec(sizes[0], tuple(sizes[1:-1]), sizes[-1], activation, l2_output)
