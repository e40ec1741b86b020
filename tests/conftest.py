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
    from fmnist_mlp.config import read_params

    return cls.from_dict({**read_params(ROOT / "params.yaml")[cls.SECTION], **overrides})


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def copy_project(dest: Path) -> Path:
    """A copy of the working tree (no git history, data, models or venv) as a fresh git+DVC repo."""
    ignore = shutil.ignore_patterns(".git", ".venv", "data", "models", "cache", "tmp", "timings",
                                    "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info")
    shutil.copytree(ROOT, dest, ignore=ignore)
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
