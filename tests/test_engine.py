"""The engine (fmnist_mlp.engine.repro): both ways of running the search items give a serial
`dvc repro`'s bytes; faults (Ctrl-C, a killed driver, a killed dvc, a second run, leftovers) stop
every process it started and never break the next run."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import psutil
import pytest
from conftest import ROOT, SMALL, copy_project, needs_dataset, override, private_copy, run_dvc
from dvc.repo import Repo

from fmnist_mlp.engine import repro

GRID = dict(  # 4 tiny items
    prepare={"subset": 3000},
    scratch={"epochs": 2, "learning_rate": 0.1},
    search={"hidden_layers": [1, 2], "hidden_units": [8, 16], "batch_size": [256],
            "epochs": [1, 2], "seeds": [0]},
    landscape={"grid": 8, "samples": 200},
)
LONG = {**GRID, "search": {**GRID["search"], "hidden_units": [8], "epochs": [500]}}  # 2 items


def project(dest, params):
    repo = copy_project(dest)
    override(repo, **params)
    return repo


def engine(repo, *args, env=None, **popen):
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
               **(env or {}))
    env.pop("SHELL", None)  # as in CI: DVC would run the stages under /bin/sh
    return subprocess.Popen([sys.executable, "-m", "fmnist_mlp.engine.repro", *args], cwd=repo,
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **popen)


def finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def training(process, count=1, timeout=300):
    """The engine's descendants once ``count`` search stages train (polls its process tree)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = psutil.Process(process.pid).children(recursive=True)
        stages = [p for p in tree if "stages.search" in " ".join(command(p))]
        if len(stages) >= count:
            return tree, stages
        assert process.poll() is None, finish(process)
        time.sleep(0.2)
    raise AssertionError("no search stage started")


def command(process) -> list[str]:
    """A process's command line; empty once it has ended (a zombie, or gone)."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def gone(processes):
    """The command lines of ``processes`` still running 15 s later (zombies count as ended)."""
    _, alive = psutil.wait_procs(processes, timeout=15)
    return [c for c in map(command, alive) if c]


def stale_items(repo):
    return [s for s in json.loads(run_dvc(repo, "status", "--json").stdout)
            if s.startswith("search@")]


@needs_dataset
@pytest.mark.slow  # a minute each way: the byte-identity of the engine, in CI's second lane
@pytest.mark.parametrize("way", ["cache", "remote"])
def test_both_ways_write_what_a_serial_repro_writes(small_pipeline, tmp_path, way):
    """The small pipeline's 2 items on 2 workers (sharing this DVC cache, or a DVC remote), then
    `dvc repro`: dvc.lock (every output's hash) is the serial `dvc repro`'s, byte for byte."""
    repo = project(tmp_path / "repo", SMALL)
    args = ["--jobs", "2"]
    if way == "remote":
        run_dvc(repo, "remote", "add", "--local", "shared", str(tmp_path / "remote"))
        args += ["--remote", "shared", "--workdir", str(tmp_path / "work")]
    code, out = finish(engine(repo, *args))
    assert code == 0, out
    assert "2 of 2 items done (2 trained, 0 restored from the run-cache)" in out, out
    assert "Running stage 'search@" not in out  # restored here, none retrained
    assert (repo / "dvc.lock").read_text() == (small_pipeline / "dvc.lock").read_text()
    assert stale_items(repo) == [] and not (repo / repro.WORKDIR).exists()
    assert sorted(p.name for p in (repo / repro.LOGS).iterdir()) == [
        f"search@{n}-8-0.05-256-0.001-relu.log" for n in (1, 2)]
    code, out = finish(engine(repo, *args))
    assert code == 0 and "Running stage" not in out, out  # nothing left to do


def test_the_local_cluster_listens_on_loopback_only():
    """`make repro`'s scheduler and workers talk through memory; the sockets they open while
    they run (their HTTP servers) listen on the loopback interface, never on a network."""
    from distributed import Client

    def listening():
        return {(c.laddr.ip, c.laddr.port) for c in psutil.Process().net_connections("all")
                if c.status == psutil.CONN_LISTEN}

    before = listening()
    with repro.local_cluster(2) as cluster, Client(cluster) as client:
        addresses = [cluster.scheduler_address, *client.scheduler_info()["workers"]]
        assert len(addresses) == 3 and all(a.startswith("inproc://") for a in addresses)
        opened = listening() - before
    assert opened and {ip for ip, _ in opened} <= {"127.0.0.1", "::1"}, opened


def tls_files(tmp_path) -> tuple[list[str], dict]:
    """docs/cluster.md's throwaway CA (openssl: one self-signed certificate and its key): the
    TLS flags of `dask scheduler` and `dask worker`, and the environment that gives a client
    Dask's TLS settings."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=fmnist-cluster", "-keyout", "key.pem", "-out", "cert.pem"],
                   cwd=tmp_path, check=True, capture_output=True)
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    env = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
           "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": cert,
           "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": cert,
           "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": key}
    return ["--tls-ca-file", cert, "--tls-cert", cert, "--tls-key", key], env


@pytest.mark.slow
@needs_dataset
def test_stale_items_whose_old_outputs_remain_come_home(small_pipeline, tmp_path):
    """A params change makes both items stale while their old outputs (and a partial file no
    cache holds, as an interrupted run leaves) are still in place: the workers train them and
    the return step replaces the old outputs, as `dvc repro` would."""
    repo = private_copy(small_pipeline, tmp_path / "repo")
    override(repo, search={"epochs": [1, 3]})
    item = next((repo / "models/search").iterdir())
    (item / "partial.keras").write_bytes(b"half a model")
    code, out = finish(engine(repo, "--jobs", "2"))
    assert code == 0, out
    assert "2 of 2 items done (2 trained, 0 restored from the run-cache)" in out, out
    assert not (item / "partial.keras").exists() and (item / "model_seed0_e3.keras").is_file()
    assert json.loads(run_dvc(repo, "status", "--json").stdout) == {}


@pytest.mark.slow
@needs_dataset
def test_a_tls_scheduler_and_workers_started_by_hand(tmp_path):
    """docs/cluster.md's recipe on this machine: `dask scheduler --protocol tls` and `dask
    worker` processes (loopback only) with a throwaway CA, the engine given Dask's TLS settings
    in its environment, sending its task code by value and the tree's files. A client without
    the certificate is refused."""
    import time

    from distributed import Client

    repo = project(tmp_path / "repo", {**GRID, "search": {**GRID["search"], "hidden_units": [8]}})
    run_dvc(repo, "remote", "add", "--local", "shared", str(tmp_path / "remote"))
    flags, env = tls_files(tmp_path)
    bin_dir, address_file = os.path.dirname(sys.executable), tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([f"{bin_dir}/dask", "scheduler", "--protocol", "tls", "--host",
                                  "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(address_file), *flags],
                                 stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([f"{bin_dir}/dask", "worker", "--scheduler-file",
                               str(address_file), "--host", "127.0.0.1", "--nworkers", "2",
                               "--nthreads", "1", "--no-dashboard", *flags], cwd=tmp_path,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not address_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)  # the scheduler writes its address once it listens
        address = json.loads(address_file.read_text())["address"]
        assert address.startswith("tls://127.0.0.1:")
        with pytest.raises((OSError, TimeoutError)):  # no certificate, no connection
            Client(address.replace("tls://", "tcp://"), timeout=3)
        code, out = finish(engine(repo, "--scheduler", address, "--remote", "shared",
                                  "--workdir", str(tmp_path / "work"), env=env))
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(60)
    assert code == 0, out
    assert re.search(rf"2 search items on [12] worker\(s\) at {re.escape(address)}", out), out
    assert "2 of 2 items done (2 trained, 0 restored from the run-cache)" in out
    assert "Running stage 'search@" not in out and stale_items(repo) == []
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["dvc-cache"]  # workspaces gone


@pytest.mark.slow
@needs_dataset
def test_ctrl_c_twice_stops_every_process_and_records_nothing(tmp_path):
    """Ctrl-C (the terminal's SIGINT to the engine's process group), twice at once: exit 130,
    every dvc and stage gone, no item recorded; meanwhile a second run is refused."""
    repo = project(tmp_path / "repo", LONG)
    first = engine(repo, "--jobs", "2", start_new_session=True)
    tree, _ = training(first, count=2)
    code, out = finish(engine(repo, "--jobs", "2"))
    assert code == 1, out
    assert f"repro: error: another run (PID {first.pid}) is using this workspace" in out, out
    os.killpg(first.pid, signal.SIGINT)
    os.killpg(first.pid, signal.SIGINT)
    code, out = finish(first, timeout=120)
    assert code == 130, out
    assert "repro: interrupted; every dvc and stage of this run stopped" in out
    assert "Traceback" not in out
    assert gone(tree) == []
    assert not (repo / repro.WORKDIR).exists()
    assert len(stale_items(repo)) == 2  # nothing reached the run-cache


@pytest.mark.slow
@needs_dataset
def test_a_killed_dvc_is_named_and_its_stage_does_not_survive(tmp_path):
    repo = project(tmp_path / "repo", LONG)
    process = engine(repo, "--jobs", "2")
    tree, stages = training(process, count=2)
    for stage in stages:
        stage.parent().kill()  # the stage's dvc, as `kill -9`
    assert gone(stages) == []  # each stage died with its dvc
    code, out = finish(process, timeout=120)
    assert code == 1, out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("repro: error:")]
    assert line.startswith("repro: error: 2 of 2 item(s) failed, nothing assembled: search@"), line
    assert line.count("dvc was killed by SIGKILL (log: logs/repro/search@") == 2, line
    assert gone(tree) == [] and "Traceback" not in out


@pytest.mark.slow
@needs_dataset
def test_a_killed_driver_leaves_no_process_and_the_next_run_recovers(tmp_path):
    repo = project(tmp_path / "repo", LONG)
    process = engine(repo, "--jobs", "2")
    tree, _ = training(process, count=2)
    process.kill()
    process.communicate()
    assert gone(tree) == []  # every dvc and stage died with it
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace(
        "- 500", "- 1"))
    code, out = finish(engine(repo, "--jobs", "2"))
    assert code == 0, out
    assert "2 items done (2 trained" in out and "Traceback" not in out


@needs_dataset
def test_a_failing_item_is_named_with_its_log_and_nothing_is_assembled(tmp_path):
    """An item too large for memory (a million layers of activations) fails in its stage, its
    sibling trains; the engine names the failed one in one line."""
    repo = project(tmp_path / "repo", {**GRID, "search": {**GRID["search"], "hidden_units": [8],
                                                          "hidden_layers": [1, 10 ** 6]}})
    code, out = finish(engine(repo, "--jobs", "2"))
    assert code == 1, out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("repro: error:")]
    assert ("1 of 2 item(s) failed, nothing assembled: search@1000000-8-0.05-256-0.001-relu: "
            "search: error: search.hidden_units 8 x hidden_layers 1000000: needs about") in line
    assert "(log: logs/repro/search@1000000-8-0.05-256-0.001-relu.log)" in line
    assert "Traceback" not in out and not (repo / "models/best").exists()


def test_a_grid_too_large_for_the_disk_is_refused_before_any_item(tmp_path):
    repo = project(tmp_path / "repo", {**GRID, "search": {**GRID["search"],
                                                          "hidden_units": [8, 10 ** 9]}})
    code, out = finish(engine(repo, "--jobs", "2"))
    assert code == 1, out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("repro: error:")]
    assert re.fullmatch(r"repro: error: search: 4 item\(s\) to train x 1 seed\(s\) x 2 epoch\(s\) "
                        r"of checkpoints need about [\d.e+]+ GiB of disk, [\d.]+ GiB free at "
                        r"\S+; fewer items, search.seeds or search.epochs", line), line
    assert list((repo / repro.LOGS).iterdir()) == [] and not (repo / "models/search").exists()


def test_leftovers_of_a_crashed_run_are_removed_whatever_they_are(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("not the engine's")
    for make in (lambda p: p.write_text("a file"), lambda p: p.symlink_to(target),
                 lambda p: (p / "w0" / "models").mkdir(parents=True)):
        path = tmp_path / "repro"
        make(path)
        repro.reset(path)
        assert not path.exists() and not path.is_symlink()
    assert (target / "keep").read_text() == "not the engine's"


def test_a_workspace_whose_tmp_is_not_a_directory_is_one_line(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "tmp").write_text("a file")
    with pytest.raises(repro.EngineError, match=r"^\S*\.dvc/tmp: File exists$"):
        with repro.one_run(tmp_path):
            pass


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5"])
def test_jobs_must_be_a_whole_number_of_at_least_one(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        repro.main(["--jobs", value])
    assert exit_.value.code == 2
    assert "error: argument -j/--jobs: " in capsys.readouterr().err


def test_workers_are_the_cores_bounded_by_memory_and_items(monkeypatch):
    from fmnist_mlp.core import runner

    monkeypatch.setattr(runner, "cores", lambda: 16)
    monkeypatch.setattr(runner, "available_memory", lambda: 64 * 2**30)
    assert repro.default_jobs(12) == 12  # no more workers than items
    assert repro.default_jobs(40) == 16  # one per core
    monkeypatch.setattr(runner, "available_memory", lambda: 4 * 2**30)
    assert repro.default_jobs(40) == 2  # 1.5 GiB a worker
    monkeypatch.setattr(runner, "cores", lambda: 1)
    assert repro.default_jobs(40) == 1  # one core: a plain, serial dvc repro


def local_workspace(root):
    """The local way's workspace of the git repository ``root``, made a DVC project."""
    run_dvc(root, "init", "-q")
    with Repo(str(root)) as dvc_repo:
        return repro.workspace(dvc_repo, repro.fingerprint(root), None, None, [])


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
    (root / "big.bin").write_bytes(bytes(repro.BIG + 1))
    (root / "ignored.txt").write_text("ignored\n")
    (root / "data" / "prepared").mkdir(parents=True)
    (root / "data" / "prepared" / "train.npz").write_bytes(b"big")
    assert set(repro.working_tree(root)) == {".gitignore", "tracked.py", "new.py", "big.bin"}
    dest = local_workspace(root).make("0")
    assert (dest / "tracked.py").read_text() == "edited, not committed\n"
    assert not (dest / "ignored.txt").exists()
    assert os.path.samefile(dest / "big.bin", root / "big.bin")  # linked, not copied
    assert os.path.samefile(dest / "data/prepared/train.npz", root / "data/prepared/train.npz")
    assert not os.path.samefile(dest / "tracked.py", root / "tracked.py")  # DVC may rewrite it
    with Repo(str(root)) as here, Repo(str(dest)) as there:  # the shared cache
        assert there.cache.local_cache_dir == here.cache.local_cache_dir


def test_the_plan_is_dvcs_and_the_stages_run_first_are_the_items_inputs():
    steps, first, before = repro.plan(ROOT)
    assert steps[:4] == ["fetch", "prepare", "gradcheck", "train_scratch"]
    assert [name for name in steps if name.startswith("search@")] == steps[4:16]
    assert first == ["fetch", "prepare"] and before == set(steps)  # the committed lock's


ITEM = ("layers${item.hidden_layers}-units${item.hidden_units}-lr${item.learning_rate}"
        "-batch${item.batch_size}-l2_${item.l2}-${item.activation}")
TOY = {  # the engine's stages around a matrix of echo commands: no TensorFlow, seconds
    "prepare": {"cmd": "mkdir -p data/prepared && echo d > data/prepared/x",
                "outs": ["data/prepared"]},
    "early": {"cmd": "echo early > early.txt", "outs": ["early.txt"]},
    "search": {"matrix": {axis: f"${{search.{axis}}}" for axis in (
        "hidden_layers", "hidden_units", "learning_rate", "batch_size", "l2", "activation")},
               "cmd": f"mkdir -p models/search/{ITEM} && echo ${{item.hidden_units}} > "
                      f"models/search/{ITEM}/m.txt",
               "deps": ["data/prepared"], "outs": [f"models/search/{ITEM}"]},
    "select": {"cmd": "cat models/search/*/m.txt > best.txt", "deps": ["models/search"],
               "outs": ["best.txt"]},
    "late": {"cmd": "echo late > late.txt", "outs": ["late.txt"]},
}


@pytest.mark.slow  # half a minute: a Dask cluster and a dozen dvc commands
def test_a_new_lock_with_an_item_already_in_the_run_cache_is_a_serial_runs(tmp_path):
    """No dvc.lock, and the run-cache holds the third of 4 items: the engine trains the other
    three, brings all four home, and dvc.lock is a serial `dvc repro`'s, byte for byte."""
    import yaml

    toy = tmp_path / "toy"
    toy.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=toy, check=True)
    run_dvc(toy, "init", "-q")
    search = {"hidden_layers": [1, 2], "hidden_units": [8, 16], "learning_rate": [0.05],
              "batch_size": [64], "l2": [0.001], "activation": ["relu"], "epochs": [1],
              "seeds": [0], "alpha": 0.05}
    (toy / "params.yaml").write_text(yaml.safe_dump({"search": search}))
    (toy / ".gitignore").write_text("/logs/\n")  # as the project's
    (toy / "dvc.yaml").write_text(yaml.safe_dump({"stages": TOY}, sort_keys=False))
    steps, first, _ = repro.plan(toy)
    assert first == ["prepare"]
    held = [name for name in steps if name.startswith("search@")][2]
    assert held == "search@2-8-0.05-64-0.001-relu"
    run_dvc(toy, "repro", "prepare")
    run_dvc(toy, "repro", "--single-item", held)
    for name in ("dvc.lock", "data", "models"):
        repro.reset(toy / name)
    serial = tmp_path / "serial"
    shutil.copytree(toy, serial, symlinks=True)
    run_dvc(serial, "repro")
    code, out = finish(engine(toy, "--jobs", "2"))
    assert code == 0, out
    assert "4 of 4 items done" in out and "3 search items on 2 worker(s)" in out, out
    assert (toy / "dvc.lock").read_text() == (serial / "dvc.lock").read_text()
    assert list(yaml.safe_load((toy / "dvc.lock").read_text())["stages"]) == steps


def test_outside_a_dvc_projects_root_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        repro.main([])
    assert exit_.value.code == 2
    assert "is not a DVC project's root (no .dvc)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_half_made_workspace_is_made_again(tmp_path):
    root = tmp_path / "repo"
    (root / "data" / "prepared").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / "a.py").write_text("the tree\n")
    way = local_workspace(root)
    half = root / repro.WORKDIR / "0"
    (half / ".dvc").mkdir(parents=True)  # a worker died while writing it
    (half / "stale.py").write_text("left over\n")
    dest = way.make("0")
    assert (dest / "a.py").read_text() == "the tree\n" and not (dest / "stale.py").exists()
    assert (dest / repro.READY).is_file()
    (dest / "a.py").write_text("an item's edit\n")
    assert way.make("0") == dest and (dest / "a.py").read_text() == "an item's edit\n"  # reused
