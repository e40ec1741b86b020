import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from filelock import FileLock

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
    from fmnist_mlp.engine.dvc_state import working_tree

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


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


def override(repo: Path, **sections) -> None:
    """Update sections of ``repo``'s params.yaml: override(repo, scratch={"epochs": 3})."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        params[name].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def ran_stages(output: str) -> list[str]:
    """The stages a `dvc repro` ran (not those it restored from the run-cache), sorted."""
    return sorted(line.split("'")[1] for line in output.splitlines()
                  if line.startswith("Running stage"))


SMALL = dict(  # the whole pipeline in about 25 s: 5 000 images, a 2x1 grid, 2 epochs, 2 seeds
    prepare={"subset": 5000},
    scratch={"epochs": 2, "learning_rate": 0.1},
    search={"hidden_layers": [1, 2], "hidden_units": [8], "batch_size": [256], "epochs": [1, 2],
            "seeds": [0, 1]},
    landscape={"grid": 12, "samples": 300},
)


def build_small_pipeline(repo: Path) -> None:
    """`dvc repro` of SMALL in a copy of the project, committed (dvc.lock as first written)."""
    copy_project(repo)
    override(repo, **SMALL)
    run_dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the small pipeline")


@pytest.fixture(scope="session")
def small_pipeline(tmp_path_factory) -> Path:
    """The small pipeline, built once per test session (by the first xdist worker that needs it,
    in the session's shared temporary directory; the others wait for it and reuse it).

    READ ONLY, shared by every test and worker: read its outputs, or run what writes nothing in
    it (``dvc metrics show``, ``dvc plots show -o elsewhere``). Its dvc.lock is the serial
    `dvc repro`'s as first written, also at ``git show HEAD:dvc.lock`` (it keeps the committed
    lock's entries of the stages SMALL's grid no longer defines, as `dvc repro` does). Whatever
    changes anything (params, code, git, a rerun) works in its own copy: the ``small_copy``
    fixture or ``private_copy``."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's, shared by its workers
    home = base / "small-pipeline"
    with FileLock(base / "small-pipeline.lock"):
        failed = home / "failed"
        if failed.is_file():
            raise RuntimeError(f"building the small pipeline failed:\n{failed.read_text()}")
        if not (home / "built").is_file():
            shutil.rmtree(home, ignore_errors=True)
            (home / "repo").mkdir(parents=True)
            try:
                build_small_pipeline(home / "repo")
            except BaseException as e:
                failed.write_text(str(e))
                raise
            (home / "built").touch()
    return home / "repo"


def private_copy(built: Path, dest: Path) -> Path:
    """A copy of the built pipeline ``built`` at ``dest`` that a test may change at will, with
    every output in place and up to date and no stage run (about 1 s).

    A git clone (its commit is the built one; the git objects are hardlinked, which is safe: git
    never writes into an object), the local set-up, and a DVC cache of its own whose files are
    hard links to the built cache's: free, and what the copy adds (objects, run-cache entries)
    stays in the copy, so no test sees another's runs. DVC never writes into a cache file and
    ``cache.type`` is ``reflink,copy``: an output in the workspace is never a link to a cache
    file, so writing into one cannot corrupt the shared cache (read-only modes do not stop
    root). ``dvc checkout`` then restores every output from the cache."""
    assert git(built, "--no-optional-locks", "status", "--porcelain") == "", \
        f"a test changed the shared pipeline {built}"
    git(dest.parent, "clone", "-q", str(built), str(dest))
    git(dest, "remote", "remove", "origin")
    for name in LOCAL_SETUP:
        if (built / name).is_file():
            shutil.copy2(built / name, dest / name)
    cache = built / ".dvc" / "cache"
    for directory, _, files in os.walk(cache):
        into = dest / ".dvc" / "cache" / Path(directory).relative_to(cache)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(Path(directory) / name, into / name)
    with open(dest / ".dvc" / "config.local", "a") as config:
        config.write("\n[cache]\n    type = reflink,copy\n")
    run_dvc(dest, "checkout")
    return dest


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture
def small_copy(small_pipeline, tmp_path, request) -> Path:
    """This test's own copy of the built small pipeline (``private_copy``), removed after the
    test unless it failed (each holds about 100 MB)."""
    repo = private_copy(small_pipeline, tmp_path / "repo")
    yield repo
    if not request.node.stash.get(FAILED, False):
        shutil.rmtree(repo, ignore_errors=True)


needs_dataset = pytest.mark.skipif(
    not PACKAGE_DIR.is_dir() and not os.environ.get("CI"),
    reason=f"real Fashion-MNIST not installed at {PACKAGE_DIR} (make test installs it)",
)


ACTIVATION_NAMES = ("relu", "tanh", "sigmoid")  # every entry of spec.ACTIVATIONS (a test checks)


def net(sizes, activation="relu", l2_output=True):
    """The MLPSpec of layer widths ``sizes`` (tests only; stages build theirs from params)."""
    from fmnist_mlp.network.spec import MLPSpec

    return MLPSpec(sizes[0], tuple(sizes[1:-1]), sizes[-1], activation, l2_output)


def problem(rng, n=24, sizes=(5, 4, 3), dtype=np.float64):
    """A toy classification problem for a network of layer widths ``sizes``: ``n`` inputs of
    normal features and one-hot labels drawn uniformly from the classes, (X, Y)."""
    X = rng.normal(size=(n, sizes[0])).astype(dtype)  # (N, d)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]  # (N, C)
    return X, Y


EXAMPLES = 10_000  # validation examples of a fake item: accuracies with 4 decimals are counts
SEEDS = (0, 1, 2)


def trial_of(units: int):
    """The Trial of 3 hidden layers of ``units`` (lr 0.05, batch 64, l2 0.001, relu)."""
    from fmnist_mlp.grid.search import Trial

    return Trial(3, units, 0.05, 64, 0.001, "relu")


def fake_item(root, trial, scores, seeds=(0,)):
    """An item directory as the search stage leaves it; scores: {epoch: (val_acc, val_loss)}
    of every seed, or {epoch: [(val_acc, val_loss) per seed]}."""
    from fmnist_mlp.grid.search import write_item_metrics

    item_dir = root / trial.name
    item_dir.mkdir(parents=True)
    runs = {seed: {e: {"val_correct": round((v[i][0] if isinstance(v, list) else v[0]) * EXAMPLES),
                       "val_loss": v[i][1] if isinstance(v, list) else v[1]}
                   for e, v in scores.items()} for i, seed in enumerate(seeds)}
    write_item_metrics(item_dir / "metrics.json", trial, EXAMPLES, runs)
    return item_dir


# The paired t-test's fixture: the winner's and another configuration's accuracy per seed 0, 1,
# 2, whose seeds give another p-value under every other pairing (test_ranking checks it).
WINNER = [0.8800, 0.8780, 0.8790]  # per seed 0, 1, 2
OTHER = [0.8700, 0.8690, 0.8670]  # its order by value differs from the winner's
LISTED_OTHERWISE = (2, 0, 1)  # an item's metrics.json listing its seeds in another order
