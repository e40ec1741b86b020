"""The engine (fmnist_mlp/engine, `python -m fmnist_mlp.engine.repro`): both ways of running the
search items give a serial `dvc repro`'s bytes; faults (Ctrl-C, a killed driver, a killed dvc, a
second run, leftovers) stop every process it started and never break the next run."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, SMALL, copy_project, needs_dataset, override, private_copy, run_dvc
from dvc.repo import Repo

from fmnist_mlp.engine import cluster, dvc_state, lock, repro, worker

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
    config = (repo / ".dvc" / "config.local").read_bytes()
    code, out = finish(engine(repo, *args))
    assert code == 0, out
    assert (repo / ".dvc" / "config.local").read_bytes() == config  # the user's, as it was
    assert "2 of 2 items done (2 trained, 0 restored from the run-cache)" in out, out
    assert "Running stage 'search@" not in out  # restored here, none retrained
    assert (repo / "dvc.lock").read_text() == (small_pipeline / "dvc.lock").read_text()
    assert stale_items(repo) == [] and not (repo / dvc_state.LOCAL_WORKSPACES).exists()
    assert sorted(p.name for p in (repo / cluster.ITEM_LOGS).iterdir()) == [
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
    with cluster.local_cluster(2) as local, Client(local) as client:
        addresses = [local.scheduler_address, *client.scheduler_info()["workers"]]
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
    assert not (repo / dvc_state.LOCAL_WORKSPACES).exists()
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


@pytest.mark.slow  # 20 s: a Dask cluster and DVC in each worker, in CI's second lane
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
    assert list((repo / cluster.ITEM_LOGS).iterdir()) == []
    assert not (repo / "models/search").exists()


def test_leftovers_of_a_crashed_run_are_removed_whatever_they_are(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("not the engine's")
    for make in (lambda p: p.write_text("a file"), lambda p: p.symlink_to(target),
                 lambda p: (p / "w0" / "models").mkdir(parents=True)):
        path = tmp_path / "repro"
        make(path)
        worker.reset(path)
        assert not path.exists() and not path.is_symlink()
    assert (target / "keep").read_text() == "not the engine's"


def dead_pid() -> int:
    """The PID of a process that has ended (a run killed long ago)."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_a_run_refused_before_the_other_has_written_its_pid_names_the_other(tmp_path,
                                                                             monkeypatch):
    """Two runs started at the same instant: the second finds the lock taken before the first
    has written its PID (here the PID file is a killed earlier run's); it waits for the first's
    PID and names it, not the earlier run's, nor `PID )`."""
    from filelock import FileLock

    tmp = tmp_path / ".dvc" / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "repro.pid").write_text(f"{dead_pid()}\n")
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    polls = []

    def the_other_writes_its_pid(seconds):  # while this run waits, the first writes its PID
        polls.append(seconds)
        (tmp / "part").write_text(f"{other.pid}\n")
        os.replace(tmp / "part", tmp / "repro.pid")

    try:
        with FileLock(tmp / "repro.lock"):  # the first run, right after it took the lock
            monkeypatch.setattr(lock.time, "sleep", the_other_writes_its_pid)
            with pytest.raises(worker.EngineError) as refused:
                with lock.one_run(tmp_path):
                    pass
            monkeypatch.undo()
    finally:
        other.communicate(b"")
    assert str(refused.value) == (f"another run (PID {other.pid}) is using this workspace; "
                                  f"wait for it to end or stop it")
    assert polls


def test_a_run_refused_with_no_pid_written_says_unknown(tmp_path, monkeypatch):
    """A PID file left empty (the old writer truncated it before writing): `PID unknown`."""
    from filelock import FileLock

    tmp = tmp_path / ".dvc" / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "repro.pid").write_text("")
    monkeypatch.setattr(lock, "PID_WAIT", 0.2)
    with FileLock(tmp / "repro.lock"), pytest.raises(worker.EngineError,
                                                     match=r"^another run \(PID unknown\) "):
        with lock.one_run(tmp_path):
            pass


RACER = """
import sys
from pathlib import Path
import filelock  # noqa: F401 (imported before the start line: both race from the same point)
from fmnist_mlp.engine import lock, worker
sys.stdin.readline()
try:
    with lock.one_run(Path(sys.argv[1])):
        print("holding", flush=True)
        sys.stdin.read()
except worker.EngineError as e:
    print(e, flush=True)
"""


def test_two_runs_started_at_the_same_instant_one_names_the_other(tmp_path):
    """Five times, two processes take the workspace at once: one holds it, the other is
    refused naming the holder's PID (not an empty or an earlier round's PID)."""
    for _ in range(5):
        racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path)], text=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                  for _ in range(2)]
        try:
            for racer in racers:
                racer.stdin.write("go\n")
            for racer in racers:
                racer.stdin.flush()
            said = {racer.pid: racer.stdout.readline().strip() for racer in racers}
        finally:
            for racer in racers:
                racer.communicate("")
        (holder,) = [pid for pid, line in said.items() if line == "holding"]
        (refused,) = [line for pid, line in said.items() if pid != holder]
        assert refused.startswith(f"another run (PID {holder}) is using this workspace"), said
    assert sorted(p.name for p in (tmp_path / ".dvc" / "tmp").iterdir()) == ["repro.lock"]


def test_a_directory_in_place_of_the_pid_file_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / ".dvc" / "tmp" / "repro.pid").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert repro.main([]) == 1
    err = capsys.readouterr().err
    assert err == (f"repro: error: {tmp_path}/.dvc/tmp/repro.pid: a directory where the engine "
                   f"writes its PID file; remove it\n")
    assert sorted(p.name for p in (tmp_path / ".dvc" / "tmp").iterdir()) == [
        "repro.lock", "repro.pid"]  # nothing half-written left beside it
    (tmp_path / ".dvc" / "tmp" / "repro.pid").rmdir()
    with lock.one_run(tmp_path):  # the lock was released
        assert (tmp_path / ".dvc" / "tmp" / "repro.pid").read_text() == f"{os.getpid()}\n"


def test_a_workspace_whose_tmp_is_not_a_directory_is_one_line(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "tmp").write_text("a file")
    with pytest.raises(worker.EngineError, match=r"^\S*\.dvc/tmp: File exists$"):
        with lock.one_run(tmp_path):
            pass


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5"])
def test_jobs_must_be_a_whole_number_of_at_least_one(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        repro.main(["--jobs", value])
    assert exit_.value.code == 2
    assert "error: argument -j/--jobs: " in capsys.readouterr().err


def test_workers_are_the_cores_bounded_by_memory_and_items(monkeypatch):
    from fmnist_mlp.core import resources

    monkeypatch.setattr(resources, "cores", lambda: 16)
    monkeypatch.setattr(resources, "available_memory", lambda: 64 * 2**30)
    assert cluster.default_jobs(12) == 12  # no more workers than items
    assert cluster.default_jobs(40) == 16  # one per core
    monkeypatch.setattr(resources, "available_memory", lambda: 4 * 2**30)
    assert cluster.default_jobs(40) == 2  # 1.5 GiB a worker
    monkeypatch.setattr(resources, "cores", lambda: 1)
    assert cluster.default_jobs(40) == 1  # one core: a plain, serial dvc repro


def local_workspace(root, items=()):
    """The local way's workspace of the git repository ``root``, made a DVC project, for the
    stages ``items``."""
    run_dvc(root, "init", "-q")
    with Repo(str(root)) as dvc_repo:
        return dvc_state.workspace_for(dvc_repo, dvc_state.fingerprint(root), None, None,
                                       tuple(items))


def test_a_workers_copy_is_the_working_tree_the_items_need_with_its_edits(tmp_path):
    """Tracked files (edited or not), and of the untracked ones, those under the items' deps
    and the packages above them; not 10 MiB of scratch files the items never read, and the
    driver holds no file's bytes (it did: every file up to 1 MiB, in memory and in each copy)."""
    import pickle

    root = tmp_path / "repo"
    (root / "pkg" / "code").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".gitignore").write_text("/data/\n/ignored.txt\n")
    (root / "tracked.py").write_text("committed\n")
    (root / "big.bin").write_bytes(bytes(worker.LARGE_FILE_BYTES + 1))
    (root / "dvc.yaml").write_text("stages:\n  train:\n    cmd: cat pkg/code/new.py\n"
                                   "    deps: [pkg/code, data/prepared]\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   cwd=root, check=True)
    (root / "tracked.py").write_text("edited, not committed\n")
    (root / "new.py").write_text("untracked, no item reads it\n")
    (root / "pkg" / "__init__.py").write_text("")  # untracked, a package above a dep
    (root / "pkg" / "code" / "new.py").write_text("untracked, in a dep\n")
    for i in range(10):  # exactly 1 MiB each: the old way copied them into every workspace
        (root / f"scratch{i}.bin").write_bytes(bytes(worker.LARGE_FILE_BYTES))
    (root / "ignored.txt").write_text("ignored\n")
    (root / "data" / "prepared").mkdir(parents=True)
    (root / "data" / "prepared" / "train.npz").write_bytes(b"big")
    assert set(dvc_state.working_tree(root)) == {
        ".gitignore", "tracked.py", "new.py", "big.bin", "dvc.yaml", "pkg/__init__.py",
        "pkg/code/new.py", *(f"scratch{i}.bin" for i in range(10))}
    way = local_workspace(root, ["train"])
    assert all(data is None for _, data in way.files) and len(pickle.dumps(way)) < 10_000
    dest = way.make("0")
    assert (dest / "tracked.py").read_text() == "edited, not committed\n"
    assert (dest / "pkg/code/new.py").read_text() == "untracked, in a dep\n"
    assert (dest / "pkg/__init__.py").is_file() and (dest / "dvc.yaml").is_file()
    assert not (dest / "new.py").exists() and not (dest / "ignored.txt").exists()
    assert not list(dest.glob("scratch*"))
    assert os.path.samefile(dest / "big.bin", root / "big.bin")  # linked, not copied
    assert os.path.samefile(dest / "data/prepared/train.npz", root / "data/prepared/train.npz")
    assert not os.path.samefile(dest / "tracked.py", root / "tracked.py")  # DVC may rewrite it
    with Repo(str(root)) as here, Repo(str(dest)) as there:  # the shared cache
        assert there.cache.local_cache_dir == here.cache.local_cache_dir


def test_the_plan_is_dvcs_and_the_stages_run_first_are_the_items_inputs():
    plan = dvc_state.plan(ROOT)
    steps, first, before = list(plan.order), list(plan.input_stages), plan.recorded
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
              "seeds": [0]}
    (toy / "params.yaml").write_text(yaml.safe_dump({"search": search}))
    (toy / ".gitignore").write_text("/logs/\n")  # as the project's
    (toy / "dvc.yaml").write_text(yaml.safe_dump({"stages": TOY}, sort_keys=False))
    plan = dvc_state.plan(toy)
    steps, first = list(plan.order), list(plan.input_stages)
    assert first == ["prepare"]
    held = [name for name in steps if name.startswith("search@")][2]
    assert held == "search@2-8-0.05-64-0.001-relu"
    run_dvc(toy, "repro", "prepare")
    run_dvc(toy, "repro", "--single-item", held)
    for name in ("dvc.lock", "data", "models"):
        worker.reset(toy / name)
    serial = tmp_path / "serial"
    shutil.copytree(toy, serial, symlinks=True)
    run_dvc(serial, "repro")
    code, out = finish(engine(toy, "--jobs", "2"))
    assert code == 0, out
    assert "4 of 4 items done" in out and "3 search items on 2 worker(s)" in out, out
    assert (toy / "dvc.lock").read_text() == (serial / "dvc.lock").read_text()
    assert list(yaml.safe_load((toy / "dvc.lock").read_text())["stages"]) == steps


def toy_project(toy, units=(8, 16), first_cmd=""):
    """TOY as a git+DVC project (nothing committed) with 2 items (1 layer of ``units``), each
    search item's command preceded by ``first_cmd``."""
    import yaml

    toy.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=toy, check=True)
    run_dvc(toy, "init", "-q")
    search = {"hidden_layers": [1], "hidden_units": list(units), "learning_rate": [0.05],
              "batch_size": [64], "l2": [0.001], "activation": ["relu"], "epochs": [1],
              "seeds": [0]}
    stages = {**TOY, "search": {**TOY["search"], "cmd": first_cmd + TOY["search"]["cmd"]}}
    (toy / "params.yaml").write_text(yaml.safe_dump({"search": search}))
    (toy / ".gitignore").write_text("/logs/\n")
    (toy / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return toy


def error_line(out: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.startswith("repro: error:")]
    return line


def test_an_unknown_remote_is_refused_before_any_work_or_change(tmp_path, monkeypatch,
                                                                capsys):
    """`--remote` naming no DVC remote: one line, before `dvc repro prepare` runs, before the
    logs are emptied or .dvc/config.local is written (it was checked only once an item had to
    train, after the items' inputs had run). In this process: main() as the command runs it."""
    toy = toy_project(tmp_path / "toy")
    (toy / "logs" / "repro").mkdir(parents=True)
    (toy / "logs" / "repro" / "earlier.log").write_text("the last run's\n")
    monkeypatch.chdir(toy)
    assert repro.main(["--remote", "nosuch", "--jobs", "2"]) == 1
    assert capsys.readouterr().err == (
        "repro: error: --remote nosuch: no such DVC remote; add one with `dvc remote add "
        "nosuch URL` (an ssh:// URL or a shared directory; docs/cluster.md)\n")
    assert not (toy / "data").exists() and not (toy / ".dvc" / "config.local").exists()
    assert (toy / "logs" / "repro" / "earlier.log").is_file()


def test_an_unreachable_scheduler_is_refused_in_seconds_before_any_change(tmp_path, monkeypatch,
                                                                          capsys):
    """`--scheduler` at a port that refuses connections: one line within seconds (Dask's client
    retried it for 60 s), and before that nothing ran, was pushed, or changed the user's
    .dvc/config.local (the remote was made its default). In this process, as main() runs."""
    import socket
    import time

    toy = toy_project(tmp_path / "toy")
    run_dvc(toy, "remote", "add", "--local", "shared", str(tmp_path / "remote"))
    config = (toy / ".dvc" / "config.local").read_bytes()
    with socket.socket() as port:
        port.bind(("127.0.0.1", 0))  # bound, not listening: the kernel refuses a connection
        address = f"tcp://127.0.0.1:{port.getsockname()[1]}"
        monkeypatch.chdir(toy)
        start = time.monotonic()
        code = repro.main(["--scheduler", address, "--remote", "shared", "--workdir",
                           str(tmp_path / "work")])
        seconds = time.monotonic() - start
    assert code == 1
    assert capsys.readouterr().err == (f"repro: error: --scheduler {address}: cannot connect: "
                                       f"Connection refused\n")
    assert seconds < 10, seconds
    assert (toy / ".dvc" / "config.local").read_bytes() == config
    assert not (tmp_path / "remote").exists() and not (toy / "data").exists()
    assert not (tmp_path / "work").exists()


def test_a_crashed_items_log_is_said_by_dvcs_own_error_line(tmp_path):
    """The log of a real `dvc repro --single-item` whose stage crashes (exit 3, no `search:
    error:` line): the engine's reason is DVC's own `ERROR:` line (why), not only `dvc exited
    255`; a stage's own error line comes first, and a log with neither is the exit code."""
    import yaml

    toy = tmp_path / "toy"
    toy.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=toy, check=True)
    run_dvc(toy, "init", "-q")
    (toy / "dvc.yaml").write_text(yaml.safe_dump(  # a colour in the command: said without it
        {"stages": {"crash": {"cmd": "echo '\x1b[31mnoise\x1b[0m'; exit 3"}}}))
    crashed = run_dvc(toy, "repro", "--single-item", "crash", check=False,
                      env={"SHELL": "/bin/bash"})
    assert crashed.returncode == 255, crashed
    log = crashed.stdout + crashed.stderr
    assert worker.failure(log, 255) == ("dvc exited 255: ERROR: failed to reproduce 'crash': "
                                       "failed to run: echo 'noise'; exit 3, exited with 3")
    assert worker.failure(f"search: error: search.l2: too big\n{log}", 255) == \
        "search: error: search.l2: too big"
    assert worker.failure("Running stage 'x':\n", 1) == "dvc exited 1"


@pytest.mark.slow  # 20 s: a Dask cluster and DVC in each worker, in CI's second lane
def test_a_crashed_stage_is_named_with_dvcs_own_error(tmp_path):
    """A search item whose command crashes (exit 3, no `search: error:` line): the engine says
    DVC's own `ERROR:` line from the item's log (why), not only `dvc exited 255`."""
    toy = toy_project(tmp_path / "toy", first_cmd="test ${item.hidden_units} != 16 || exit 3; ")
    code, out = finish(engine(toy, "--jobs", "2"), timeout=300)
    assert code == 1, out
    item = "search@1-16-0.05-64-0.001-relu"
    assert re.fullmatch(
        rf"repro: error: 1 of 2 item\(s\) failed, nothing assembled: {re.escape(item)}: dvc "
        rf"exited \d+: ERROR: failed to reproduce '{re.escape(item)}': failed to run: test 16 "
        rf"!= 16 \|\| exit 3; .*, exited with 3 \(log: logs/repro/{re.escape(item)}\.log\)",
        error_line(out)), out
    assert "Traceback" not in out


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
    subprocess.run(["git", "add", "a.py"], cwd=root, check=True)  # tracked: in every copy
    way = local_workspace(root)
    half = root / dvc_state.LOCAL_WORKSPACES / "0"
    (half / ".dvc").mkdir(parents=True)  # a worker died while writing it
    (half / "stale.py").write_text("left over\n")
    dest = way.make("0")
    assert (dest / "a.py").read_text() == "the tree\n" and not (dest / "stale.py").exists()
    assert (dest / worker.READY_MARKER).is_file()
    (dest / "a.py").write_text("an item's edit\n")
    assert way.make("0") == dest and (dest / "a.py").read_text() == "an item's edit\n"  # reused


def test_what_a_worker_runs_imports_only_the_standard_library_dask_and_distributed():
    """The allow-list beside pyproject.toml's import-linter contract (a list of what is
    forbidden): every module worker.py imports, at the top or in a function."""
    import grimp

    graph = grimp.build_graph("fmnist_mlp", include_external_packages=True)
    imported = graph.find_modules_directly_imported_by("fmnist_mlp.engine.worker")
    others = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
    assert others <= {"dask", "distributed"}, others


def test_the_task_code_needs_no_copy_of_the_project_on_a_worker(tmp_path):
    """A task and its workspace pickled as `connect` sends them (worker.py by value) load and
    run in a Python that cannot import fmnist_mlp, as on a worker without the project."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(worker)
    try:
        sent = cloudpickle.dumps((worker.run_item, worker.Workspace(str(tmp_path), (), "cache"),
                                  worker.failure, worker.ItemResult))
    finally:
        cloudpickle.unregister_pickle_by_value(worker)
    loaded = subprocess.run(
        [sys.executable, "-c", "import pickle, sys; sys.modules['fmnist_mlp'] = None; "
         "task, workspace, failure, result = pickle.loads(sys.stdin.buffer.read()); "
         "print(task.__name__, workspace.base, failure('ERROR: no', 1), result('i', None))"],
        input=sent, capture_output=True, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert loaded.stdout.decode() == (f"run_item {tmp_path} dvc exited 1: ERROR: no "
                                      f"ItemResult(item='i', error=None, trained=False, "
                                      f"train_seconds=0.0, log_text=None)\n")


def test_each_module_of_the_engine_is_at_most_250_lines():
    engine = Path(repro.__file__).parent
    assert {p.name: n for p in engine.glob("*.py")
            if (n := len(p.read_text().splitlines())) > 250} == {}


@pytest.mark.slow  # a dozen dvc commands
def test_with_a_remote_and_no_item_to_train_the_closing_repro_pulls_from_it(tmp_path):
    """--remote when every stale item is in this run-cache (no worker starts): the remote is
    still this run's default, so the closing `dvc repro --pull` pulls an output missing here
    rather than running its stage again (it used to: no default remote); config.local is put
    back after."""
    import yaml

    toy = toy_project(tmp_path / "toy")
    stages = yaml.safe_load((toy / "dvc.yaml").read_text())
    stages["stages"]["late"]["cmd"] = ("python3 -c 'import uuid; print(uuid.uuid4())' "
                                       "> late.txt")  # a new line each time it runs
    (toy / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False))
    run_dvc(toy, "remote", "add", "--local", "shared", str(tmp_path / "remote"))
    config = (toy / ".dvc/config.local").read_bytes()
    run_dvc(toy, "repro")
    run_dvc(toy, "push", "-r", "shared", "--run-cache")
    late = (toy / "late.txt").read_text()
    md5 = yaml.safe_load((toy / "dvc.lock").read_text())["stages"]["late"]["outs"][0]["md5"]
    (toy / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).unlink()  # only the remote holds it
    (toy / "late.txt").unlink()
    shutil.rmtree(toy / "models")  # the items stale, their results in this run-cache
    code, out = finish(engine(toy, "--remote", "shared", "--workdir", str(tmp_path / "work")))
    assert code == 0, out
    assert "2 of 2 items done (0 trained" in out, out
    assert (toy / "late.txt").read_text() == late  # pulled, not made again
    assert (toy / ".dvc/config.local").read_bytes() == config
