"""The search on a Dask cluster: 2 local worker processes, a DVC remote in a temporary directory,
a grid of 4 items, 2 epochs, 3 000 images."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import copy_project, needs_dataset, run_dvc
from test_pipeline import git, override

pytest.importorskip("dask.distributed")
pytestmark = [pytest.mark.slow, needs_dataset]

GRID = dict(
    prepare={"subset": 3000},
    scratch={"epochs": 2, "learning_rate": 0.1},
    search={"hidden_layers": [1, 2], "hidden_units": [8, 16], "batch_size": [256],
            "epochs": [1, 2], "seeds": [0]},
    landscape={"grid": 8, "samples": 200},
)


def committed_copy(dest, **params):
    repo = copy_project(dest)
    override(repo, **params)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "small grid")
    return repo


def cluster(repo, remote, *args):
    run_dvc(repo, "remote", "add", "--local", "--force", "shared", str(remote))
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    return subprocess.run([sys.executable, "-m", "fmnist_mlp.engine.cluster", "--remote", "shared",
                           "--workers", "2", *args], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    base = tmp_path_factory.mktemp("cluster")
    repo = committed_copy(base / "repo", **GRID)
    result = cluster(repo, base / "remote", "--workdir", str(base / "work"))
    return repo, base, result


def test_every_item_is_computed_by_a_worker_and_none_retrained_here(ran):
    repo, base, result = ran
    assert result.returncode == 0, result.stderr
    assert "4 items done (4 trained, 0 restored from the run-cache)" in result.stderr
    ran_here = next(ln for ln in result.stderr.splitlines() if "ran here:" in ln)
    assert "search@" not in ran_here and "select" in ran_here, ran_here
    assert "up to date" in run_dvc(repo, "status").stdout
    assert [p.name for p in (base / "work").iterdir()] == ["dvc-cache"]  # clones removed


def test_the_result_is_a_plain_repro_byte_for_byte(ran, tmp_path):
    repo, _, _ = ran
    plain = committed_copy(tmp_path / "plain", **GRID)
    run_dvc(plain, "repro")
    assert (plain / "dvc.lock").read_text() == (repo / "dvc.lock").read_text()
    for path in sorted((repo / "metrics").glob("*.json")):
        assert json.loads(path.read_text()) == json.loads((plain / "metrics" / path.name)
                                                          .read_text()), path.name


def test_a_rerun_computes_nothing_new(ran):
    repo, base, _ = ran
    again = cluster(repo, base / "remote")
    assert again.returncode == 0, again.stderr
    assert "4 items done (0 trained, 4 restored from the run-cache)" in again.stderr


def test_a_failing_item_is_named_and_nothing_is_assembled(tmp_path):
    """An item too large for any worker's memory fails twice (one retry); the run stops."""
    repo = committed_copy(tmp_path / "repo", **{**GRID, "search": {
        **GRID["search"], "hidden_layers": [1], "hidden_units": [8, 10 ** 9]}})
    result = cluster(repo, tmp_path / "remote", "--workdir", str(tmp_path / "work"))
    assert result.returncode == 1, result.stderr
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("cluster: error:"))
    assert "1 of 2 item(s) failed twice, nothing assembled: search@1-1000000000-" in line, line
    assert "Traceback" not in result.stderr
    assert not (repo / "models/best").exists()


def test_the_readme_recipe_with_a_scheduler_and_workers(tmp_path):
    """`dask scheduler` and `dask worker` started as the README says, on this machine."""
    repo = committed_copy(tmp_path / "repo", **{**GRID, "search": {**GRID["search"],
                                                                   "hidden_units": [8]}})
    bin_dir = os.path.dirname(sys.executable)
    port = "8799"
    scheduler = subprocess.Popen([f"{bin_dir}/dask", "scheduler", "--port", port,
                                  "--no-dashboard"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([f"{bin_dir}/dask", "worker", f"tcp://127.0.0.1:{port}",
                               "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                              cwd=repo, env=dict(os.environ, PYTHONPATH="."),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = cluster(repo, tmp_path / "remote", "--scheduler", f"tcp://127.0.0.1:{port}")
    finally:
        worker.terminate()
        scheduler.terminate()
        worker.wait(30)
        scheduler.wait(30)
    assert result.returncode == 0, result.stderr
    assert re.search(r"2 items on [12] worker\(s\) at tcp://127.0.0.1:8799", result.stderr)
    assert "2 items done" in result.stderr
    ran_here = next(ln for ln in result.stderr.splitlines() if "ran here:" in ln)
    assert "search@" not in ran_here and "select" in ran_here, ran_here
