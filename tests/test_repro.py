"""fmnist_mlp.engine.repro without a pipeline run: how many workers, and what a worker's copy holds."""

import subprocess

from fmnist_mlp.engine import repro


def test_workers_are_the_cores_bounded_by_memory_and_items(monkeypatch):
    monkeypatch.setattr(runner, "cores", lambda: 16)
    monkeypatch.setattr(runner, "available_memory", lambda: 64 * 2**30)
    assert repro.default_jobs(12) == 12  # no more workers than items
    assert repro.default_jobs(40) == 16  # one per core
    monkeypatch.setattr(runner, "available_memory", lambda: 4 * 2**30)
    assert repro.default_jobs(40) == 2  # 1.5 GiB a worker
    monkeypatch.setattr(runner, "cores", lambda: 1)
    assert repro.default_jobs(40) == 1  # one core: a plain, serial dvc repro


def test_a_workers_copy_is_the_working_tree_with_its_edits(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".gitignore").write_text("/data/\n/ignored.txt\n")
    (root / "tracked.py").write_text("committed\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   cwd=root, check=True)
    (root / "tracked.py").write_text("edited, not committed\n")
    (root / "new.py").write_text("untracked\n")
    (root / "ignored.txt").write_text("ignored\n")
    (root / "data" / "prepared").mkdir(parents=True)
    (root / "data" / "prepared" / "train.npz").write_bytes(b"big")
    files = set(repro.working_tree(root))
    assert files == {".gitignore", "tracked.py", "new.py"}


def test_dead_stages_leave_dvc_lock_and_the_rest_is_untouched():
    lock = ("schema: '2.0'\nstages:\n  fetch:\n    cmd: python -m stages.fetch data/raw\n"
            "    outs:\n    - path: data/raw\n  search@3-30-0.05-64-0.001:\n    cmd: old name\n"
            "  search@3-30-0.05-64-0.001-relu:\n    cmd: new name\n")
    text, dead = repro.prune_lock(lock, {"fetch", "search@3-30-0.05-64-0.001-relu"})
    assert dead == ["search@3-30-0.05-64-0.001"]
    assert text == lock.replace("  search@3-30-0.05-64-0.001:\n    cmd: old name\n", "")
    assert repro.prune_lock(text, {"fetch", "search@3-30-0.05-64-0.001-relu"}) == (text, [])
