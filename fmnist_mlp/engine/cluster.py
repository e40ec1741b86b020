"""The search's matrix items on a Dask cluster; DVC's remote and run-cache bring the results home.

Usage: python -m fmnist_mlp.engine.cluster --remote NAME [--scheduler tcp://HOST:8786] [--workers N]
           [--repo URL] [--workdir DIR]

1. The coordinator (here) runs `dvc repro prepare` and pushes what the items depend on (fetch's
   and prepare's outputs and the run-cache) to the DVC remote NAME.
2. It submits one Dask task per matrix item (`dvc stage list`). A task clones the repository
   (``--repo``, default: this one's path, or its ``origin`` for a remote cluster) into a fresh
   directory on its worker, checks out the coordinator's commit, writes the coordinator's
   params.yaml, runs `dvc repro --pull search@<item>`, then `dvc push` and `dvc push --run-cache`.
   The clones on one machine share one DVC cache (``<workdir>/dvc-cache``), so the data is
   pulled once per machine. A failed task is retried once, in a new clone; a clone is removed
   when its task ends, so a worker that dies mid-item leaves nothing a later run could take for
   a result (DVC pushes an item, and records it in the run-cache, only once it has finished).
3. Only when every item succeeded, the coordinator runs `dvc repro --pull`: the search items are
   restored from the remote's run-cache, none retrained; select, evaluate and landscape run
   here, and dvc.lock comes out as a plain `dvc repro` writes it. Otherwise it names each failed
   item with its error and exits 1; a rerun computes only what is missing (the run-cache).

Without --scheduler it starts a local cluster of N worker processes (default: this machine's
cores), one thread each: TensorFlow runs one thread per stage (fmnist_mlp/core/numerics.py), so each
worker uses its one core.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MATRIX = "search"  # the matrix stage whose items the cluster runs
UPSTREAM = ("fetch", "prepare")  # what the items depend on, pushed by the coordinator
KEEP_TRACKED = ("params.yaml", "dvc.lock", "metrics/", "plots/")  # may differ from the commit
WAIT = 60  # seconds for a scheduler and its first worker to answer
CACHE = "dvc-cache"  # one DVC cache per worker machine, under the work dir: data pulled once


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def stage_env() -> dict:
    """The environment of a stage: this Python's venv first on PATH (stages run `python`)."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


# ``run_item`` runs on the workers: this module imports nothing of the project, so that Dask
# (which pickles what ``python -m fmnist_mlp.engine.cluster`` defines by value) needs no project code
# on the scheduler. fmnist_mlp.engine.repro takes dvc() and stage_env() from here.


class ClusterError(Exception):
    """A failure of the cluster run, said in one line."""


def run(argv: list[str], cwd: Path, env: dict | None = None) -> str:
    """Run a command; its combined output, or ClusterError with its last line."""
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        lines = [ln.strip() for ln in output.splitlines() if ln.strip()] or ["(no output)"]
        said = next((ln for ln in lines if "error" in ln.lower()), lines[-1])
        command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv[:5]))
        raise ClusterError(f"`{command}` exited {result.returncode}: {said}")
    return output


def run_item(item: str, repo: str, commit: str, params: str, remote: str, remote_url: str,
             workdir: str | None = None) -> dict:
    """One Dask task: the matrix item ``item`` in a fresh clone; returns whether it trained
    (False: restored from a run-cache)."""
    base = Path(workdir or Path(tempfile.gettempdir()) / "fmnist-cluster")
    base.mkdir(parents=True, exist_ok=True)
    clone = Path(tempfile.mkdtemp(prefix=f"{item.replace('@', '-')}-", dir=base))
    try:
        run(["git", "clone", "--quiet", "--no-checkout", repo, str(clone)], base)
        run(["git", "checkout", "--quiet", commit], clone)
        (clone / "params.yaml").write_text(params)
        run(dvc("remote", "add", "--local", "--force", "--default", remote, remote_url), clone)
        run(dvc("cache", "dir", "--local", str(base / CACHE)), clone)
        env = stage_env()
        output = run(dvc("repro", "--pull", item), clone, env)
        run(dvc("push", "--remote", remote, item), clone, env)
        run(dvc("push", "--remote", remote, "--run-cache"), clone, env)
    finally:
        shutil.rmtree(clone, ignore_errors=True)
    return {"item": item, "trained": f"Running stage '{item}'" in output}


def matrix_items(root: Path) -> list[str]:
    names = run(dvc("stage", "list", "--name-only"), root).split()
    return [n for n in names if n.startswith(f"{MATRIX}@")]


def remote_url(root: Path, name: str) -> str:
    for line in run(dvc("remote", "list"), root).splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return parts[1]
    raise ClusterError(f"--remote {name}: no such DVC remote; add one with "
                       f"`dvc remote add {name} URL` (S3, SSH or a shared directory)")


def check_committed(root: Path) -> str:
    """The commit the workers check out; error if code or config differs from it."""
    try:
        commit = run(["git", "rev-parse", "HEAD"], root).strip()
    except ClusterError:
        raise ClusterError("no commit to send to the workers: commit the project first") from None
    changed = [line[3:] for line in run(["git", "status", "--porcelain", "--untracked-files=no"],
                                        root).splitlines()]
    code = [p for p in changed if not p.startswith(KEEP_TRACKED)]
    if code:
        raise ClusterError(f"uncommitted changes the workers would not run: {', '.join(code)}; "
                           f"commit them first (params.yaml is sent as it is)")
    return commit


def default_repo(root: Path, scheduler: str | None) -> str:
    if scheduler:
        try:
            return run(["git", "remote", "get-url", "origin"], root).strip()
        except ClusterError:
            pass
    return str(root)


def submit_all(client, items: list[str], task_args: tuple, workdir: str | None) -> list[dict]:
    """Run every item (one retry each), with a progress bar and ETA; ClusterError naming every
    item that failed twice."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    futures = {client.submit(run_item, item, *task_args, workdir, key=f"item-{item}",
                             retries=1, pure=False): item for item in items}
    done, failed = [], []
    with tqdm(total=len(items), desc="cluster", unit="item", file=sys.stderr) as bar:
        for future in as_completed(futures):
            try:
                done.append(future.result())
            except Exception as e:  # a task's error, re-raised by Dask on the coordinator
                failed.append(f"{futures[future]}: {e}")
            bar.update(1)
    if failed:
        raise ClusterError(f"{len(failed)} of {len(items)} item(s) failed twice, nothing "
                           f"assembled: " + "; ".join(sorted(failed)))
    return done


def coordinate(root: Path, remote: str, scheduler: str | None = None, workers: int | None = None,
               repo: str | None = None, workdir: str | None = None) -> list[dict]:
    from dask.distributed import Client, LocalCluster

    commit = check_committed(root)
    url = remote_url(root, remote)
    env = stage_env()
    default = subprocess.run(dvc("remote", "default"), cwd=root, capture_output=True, text=True)
    if default.stdout.strip() != remote:  # what `dvc repro --pull` pulls from
        run(dvc("remote", "default", "--local", remote), root)
        log(f"made {remote} this clone's default DVC remote (.dvc/config.local): "
            f"`dvc repro --pull` pulls from the default")
    log(f"preparing the items' inputs and pushing them to remote {remote} ({url})")
    run(dvc("repro", *UPSTREAM), root, env)
    run(dvc("push", "--remote", remote, *UPSTREAM), root, env)
    run(dvc("push", "--remote", remote, "--run-cache"), root, env)
    items = matrix_items(root)
    args = (repo or default_repo(root, scheduler), commit, (root / "params.yaml").read_text(),
            remote, url)
    if scheduler:
        try:
            cluster, client = None, Client(scheduler, timeout=WAIT)
            client.wait_for_workers(1, timeout=WAIT)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"--scheduler {scheduler}: no scheduler with a worker answered "
                               f"within {WAIT} s ({type(e).__name__}); start `dask scheduler` "
                               f"and `dask worker {scheduler}`") from None
    else:
        n = workers or len(os.sched_getaffinity(0))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL)
        client = Client(cluster)
    log(f"{len(items)} items on {len(client.scheduler_info()['workers'])} worker(s)"
        f"{' at ' + scheduler if scheduler else ' (local cluster)'}, commit {commit[:8]}")
    try:
        done = submit_all(client, items, args, workdir)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    trained = sum(d["trained"] for d in done)
    log(f"{len(done)} items done ({trained} trained, {len(done) - trained} restored from the "
        f"run-cache); assembling with `dvc repro --pull`")
    output = run(dvc("repro", "--pull"), root, env)
    ran = [ln.split("'")[1] for ln in output.splitlines() if ln.startswith("Running stage '")]
    retrained = [name for name in ran if name.startswith(f"{MATRIX}@")]
    if retrained:
        raise ClusterError(f"`dvc repro --pull` retrained {len(retrained)} item(s) the cluster "
                           f"had computed: {', '.join(retrained)}")
    log(f"ran here: {', '.join(ran) or 'nothing (all up to date)'}")
    return done


def log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmnist_mlp.engine.cluster",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--remote", required=True, help="DVC remote the workers share")
    parser.add_argument("--scheduler", help="tcp://HOST:8786 (default: a local cluster)")
    parser.add_argument("--workers", type=int, help="local cluster size (default: cores)")
    parser.add_argument("--repo", help="git URL the workers clone (default: this repository)")
    parser.add_argument("--workdir", help="where workers make their clones and keep their DVC "
                                          "cache (default: <tmp>/fmnist-cluster)")
    args = parser.parse_args(argv)
    try:
        coordinate(Path.cwd(), args.remote, args.scheduler, args.workers, args.repo,
                   args.workdir)
    except ClusterError as e:
        print(f"cluster: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cluster: interrupted; no item is half-pushed (DVC pushes finished items only)",
              file=sys.stderr)
        return 130
    log("done: dvc.lock, metrics and plots as a plain `dvc repro` writes them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
