"""End to end: `dvc repro` on the real data in a temporary copy of the repo, with small params."""

import json

import pytest
import yaml
from conftest import copy_project, needs_dataset, run_dvc

pytestmark = [pytest.mark.slow, needs_dataset]


def override(repo, **sections):
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory):
    """The foundation stages run once on 5 000 images, 2 epochs at a larger learning rate."""
    repo = copy_project(tmp_path_factory.mktemp("e2e") / "repo")
    override(repo, prepare={"subset": 5000}, scratch={"epochs": 2, "learning_rate": 0.1})
    run_dvc(repo, "repro", "train_scratch", "gradcheck")
    return repo


def test_foundation_stages_write_sane_metrics(small_repo):
    grad = json.loads((small_repo / "metrics/gradcheck.json").read_text())
    assert grad["relative_error"] < 1e-7 and grad["check_grad"] < 1e-5
    scratch = json.loads((small_repo / "metrics/scratch.json").read_text())
    assert 0.3 < scratch["val"]["accuracy"] <= 1.0
    assert 0.0 < scratch["val"]["loss"] < 2.3
    history = (small_repo / "plots/scratch_history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss,train_accuracy,val_accuracy"
    assert len(history) == 3
    import numpy as np

    with np.load(small_repo / "models/scratch/trajectory.npz") as f:
        assert f["trajectory"].shape == (3, 8180)
    with np.load(small_repo / "data/prepared/val.npz") as f:
        assert f["X"].shape == (1000, 784) and f["Y"].shape == (1000, 10)


def test_second_repro_changes_nothing(small_repo):
    out = run_dvc(small_repo, "repro", "train_scratch", "gradcheck").stdout
    assert "Running stage" not in out
    assert "up to date" in out


def test_invalid_param_stops_with_the_key_and_no_output(small_repo):
    override(small_repo, scratch={"learning_rate": 0})
    try:
        result = run_dvc(small_repo, "repro", "train_scratch", check=False)
        assert result.returncode != 0
        assert "scratch.learning_rate: expected a value > 0, got 0" in result.stderr + result.stdout
        assert not (small_repo / "models/scratch").exists()
    finally:
        override(small_repo, scratch={"learning_rate": 0.1})


def test_corrupt_source_fails_fetch_and_leaves_no_raw(small_repo, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (bad / name).write_bytes(b"\x00\x00\x08\x01" + bytes(8))
    override(small_repo, fetch={"source_dir": str(bad)})
    result = run_dvc(small_repo, "repro", "fetch", check=False)
    assert result.returncode != 0
    assert "train-images-idx3-ubyte (from" in result.stderr and "SHA-256 mismatch" in result.stderr
    assert not (small_repo / "data/raw").exists()
