"""The engine's cluster path (`--remote NAME --scheduler ADDR`, docs/cluster.md) with every part
its own process, as on machines of their own: Debian's OpenSSH server on loopback holding an
`ssh://` DVC remote, `dask scheduler` and `dask worker`; and what docs/design.md says the engine
refuses: workers with other package versions, an edit to the working tree while the items run.

Every process a test starts is stopped by it, with its descendants, also when it fails; a test
waits on a process's own lines (sshd's and Dask's logs, the engine's), never on a clock."""

import hashlib
import importlib.metadata
import json
import os
import pwd
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, suppress
from pathlib import Path

import psutil
import pytest
from conftest import SMALL, copy_project, needs_dataset, override, run_dvc

SSHD = Path("/usr/sbin/sshd")  # Debian's openssh-server (make test-slow installs it)
BIN = Path(sys.executable).parent
ITEMS = [f"search@{n}-8-0.05-256-0.001-relu" for n in (1, 2)]  # SMALL's two items
OUTPUTS = ("data", "models", "metrics", "plots", "reports")  # every output of the pipeline


def environment(**extra) -> dict:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra)
    env.pop("SHELL", None)  # as in CI: DVC would run the stages under /bin/sh
    env.pop("SSH_AUTH_SOCK", None)  # no agent: only the keys the test makes
    return env


def engine(repo: Path, *args: str, env: dict | None = None) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-m", "fmnist_mlp.engine.repro", *args], cwd=repo,
                            env=env or environment(), capture_output=True, text=True,
                            timeout=600)
    return result.returncode, result.stdout + result.stderr


def stop(process: subprocess.Popen) -> None:
    """``process`` and every descendant it has now: SIGTERM, then SIGKILL for what is left."""
    try:
        tree = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        tree = []
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in tree:
        with suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(tree, timeout=30)


def start(stack: ExitStack, argv: list[str], ready: str, **popen) -> tuple[re.Match, list[str]]:
    """``argv`` started (stopped when ``stack`` closes) once a line of its stderr matches
    ``ready``: the match, and its stderr's lines so far and to come (a thread reads them)."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, **popen)
    stack.callback(stop, process)
    lines: list[str] = []
    found: queue.Queue = queue.Queue()

    def read():
        for line in process.stderr:
            lines.append(line)
            if match := re.search(ready, line):
                found.put(match)
        found.put(None)  # its stderr closed: it ended

    threading.Thread(target=read, daemon=True).start()
    with suppress(queue.Empty):
        if match := found.get(timeout=120):
            return match, lines
    raise AssertionError(f"{Path(argv[0]).name} did not start:\n{''.join(lines)}")


def dask_cluster(stack: ExitStack, workers: int, cwd: Path, env: dict) -> str:
    """`dask scheduler` on loopback and `dask worker` processes (one thread each, as
    docs/cluster.md says), all started from this venv; the scheduler's address once ``workers``
    workers are connected to it."""
    from distributed import Client

    found, _ = start(stack, [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                             "--no-dashboard"], r"Scheduler at:\s+(tcp://127\.0\.0\.1:\d+)",
                     cwd=cwd, env=env)
    address = found.group(1)
    start(stack, [str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", "--nworkers",
                  str(workers), "--nthreads", "1", "--no-dashboard", "--local-directory",
                  str(cwd / "dask")], r"Registered to:", cwd=cwd, env=env)
    with Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=120)
    return address


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    """A throwaway ed25519 key pair at ``path``; its public line."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fmnist-test", "-f",
                    str(path)], check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


def ssh_server(stack: ExitStack, tmp_path: Path, home: Path) -> tuple[str, list[str]]:
    """Debian's sshd on 127.0.0.1, as this user, by key only (root included: no password),
    SFTP served; a client key in ``home``/.ssh and the server's host key in its known_hosts,
    as a user's own. The remote URL's ``user@127.0.0.1:port``, and sshd's log lines."""
    user = pwd.getpwuid(os.getuid()).pw_name
    port = free_port()
    host_key = keygen(tmp_path / "sshd" / "host_key")
    (tmp_path / "sshd" / "authorized_keys").write_text(keygen(home / ".ssh" / "id_ed25519") + "\n")
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
    config = tmp_path / "sshd" / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {tmp_path}/sshd/host_key",
        f"AuthorizedKeysFile {tmp_path}/sshd/authorized_keys", "PidFile none",
        "PermitRootLogin prohibit-password", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "StrictModes no",  # the keys live under /tmp, which every user may write into
        "Subsystem sftp internal-sftp", "LogLevel VERBOSE", ""]))
    if os.getuid() == 0:  # its privilege separation directory, made by the init script
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    _, log = start(stack, [str(SSHD), "-D", "-e", "-f", str(config)],
                   rf"Server listening on 127\.0\.0\.1 port {port}\b")
    return f"{user}@127.0.0.1:{port}", log


def digests(repo: Path) -> dict[str, str]:
    """Every file of the pipeline's outputs, by its path: its SHA-256."""
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for top in OUTPUTS for p in sorted((repo / top).rglob("*")) if p.is_file()}


@needs_dataset
@pytest.mark.slow  # two minutes: fetch, prepare, 2 items on 2 Dask workers, the rest
@pytest.mark.skipif(not SSHD.is_file() and not os.environ.get("CI"),
                    reason=f"no OpenSSH server at {SSHD} (make test-slow installs it)")
def test_the_cluster_path_over_an_ssh_remote_gives_a_serial_runs_bytes(small_pipeline, tmp_path):
    """docs/cluster.md's way with an `ssh://` remote: sshd, the scheduler and two workers each a
    process of its own, each worker with nothing but the remote's URL and the user's own key
    (its ~/.ssh); dvc.lock and every output byte for byte those of a serial `dvc repro` here."""
    home = tmp_path / "home"  # the user's home on every "machine": ~/.ssh
    env = environment(HOME=str(home))
    repo = copy_project(tmp_path / "repo")
    override(repo, **SMALL)
    with ExitStack() as stack:
        login, sshd_log = ssh_server(stack, tmp_path, home)
        url = f"ssh://{login}{tmp_path}/remote"
        run_dvc(repo, "remote", "add", "--local", "shared", url)
        scheduler = dask_cluster(stack, 2, tmp_path, env)
        began = time.monotonic()
        code, out = engine(repo, "--remote", "shared", "--scheduler", scheduler, "--workdir",
                           str(tmp_path / "work"), env=env)
        took = time.monotonic() - began
    assert code == 0, out
    print(f"the engine over ssh:// with 2 Dask workers: {took:.1f} s")
    assert f"2 search items on 2 worker(s) at {scheduler}" in out, out
    assert "2 of 2 items done (2 trained, 0 restored from the run-cache)" in out, out
    # both came home from the remote's run-cache: no item ran here (a stage writes its timing
    # only when it runs)
    assert not list((repo / "timings").glob("search-*.json"))
    assert (repo / "dvc.lock").read_bytes() == (small_pipeline / "dvc.lock").read_bytes()
    assert digests(repo) == digests(small_pipeline)
    # the workers had only the URL: their inputs came over SSH into their machine's cache
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["dvc-cache"]
    assert any((tmp_path / "work" / "dvc-cache").rglob("*")), "the workers pulled nothing"
    assert sum("Accepted publickey for" in line for line in sshd_log) >= 3, "".join(sshd_log)
    assert json.loads(run_dvc(repo, "status", "--json").stdout) == {}


def item_logs(repo: Path) -> list[str]:
    """The items' logs of the engine's run (none when it stopped before making their folder)."""
    logs = repo / "logs/repro"
    return sorted(p.name for p in logs.iterdir()) if logs.is_dir() else []


@needs_dataset
@pytest.mark.slow  # a Dask scheduler and worker of their own, half a minute
def test_workers_with_other_package_versions_are_refused_before_any_item(tmp_path):
    """A worker whose environment holds another Keras (its distribution's metadata first on its
    path, as an install of another version leaves it) is named with both versions in one line,
    and no item runs."""
    repo = copy_project(tmp_path / "repo")
    override(repo, **SMALL)
    run_dvc(repo, "remote", "add", "--local", "shared", str(tmp_path / "remote"))
    other = tmp_path / "other-packages" / "keras-3.0.0.dist-info"
    other.mkdir(parents=True)
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: keras\nVersion: 3.0.0\n")
    here = importlib.metadata.version("keras")
    assert here != "3.0.0"
    with ExitStack() as stack:
        scheduler = dask_cluster(stack, 1, tmp_path,
                                 environment(PYTHONPATH=str(other.parent)))
        code, out = engine(repo, "--remote", "shared", "--scheduler", scheduler, "--workdir",
                           str(tmp_path / "work"))
    assert code == 1, out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("repro: error:")]
    assert re.fullmatch(rf"repro: error: --scheduler {re.escape(scheduler)}: the workers' "
                        rf"packages differ, their bytes would too: keras 3\.0\.0 on "
                        rf"tcp://127\.0\.0\.1:\d+ \(here {re.escape(here)}\)", line), line
    assert "Traceback" not in out
    assert item_logs(repo) == [] and not (repo / "models/search").exists()
    assert not (tmp_path / "work").exists()  # no worker made a workspace


@needs_dataset
@pytest.mark.slow  # two items train (half a minute)
def test_an_edit_while_the_items_run_stops_the_run_before_they_come_home(tmp_path):
    """README.md edited and a file added once the items were sent: the items finish, then the
    engine stops in one line naming both, and nothing comes home (their results are for the
    files as they were)."""
    repo = copy_project(tmp_path / "repo")
    override(repo, **SMALL)
    lock = (repo / "dvc.lock").read_text()
    process = subprocess.Popen([sys.executable, "-m", "fmnist_mlp.engine.repro", "--jobs", "2"],
                               cwd=repo, env=environment(), text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        said = []
        for line in process.stdout:  # the engine's own lines, as they come
            said.append(line)
            if "2 search items on 2 worker(s)" in line:  # the tree was read and sent
                with (repo / "README.md").open("a") as readme:
                    readme.write("\nAn edit while the items run.\n")
                (repo / "notes.txt").write_text("a new file\n")
                break
        out = "".join(said) + process.communicate(timeout=600)[0]
    finally:
        stop(process)
    assert process.returncode == 1, out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("repro: error:")]
    assert line == ("repro: error: README.md, notes.txt changed while the items ran: their "
                    "results are for the files as they were; run again"), line
    assert out.count(": trained") == 2 and "Traceback" not in out, out
    assert item_logs(repo) == [f"{item}.log" for item in ITEMS]
    assert not (repo / "models/search").exists()  # step 3 did not run
    assert all(item not in (repo / "dvc.lock").read_text() for item in ITEMS)
    assert lock != (repo / "dvc.lock").read_text()  # fetch and prepare ran here first
