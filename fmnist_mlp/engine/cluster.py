"""The driver's Dask side: how many local workers, a local cluster, a scheduler reached and its
workers' packages checked, and the items run as Dask tasks (``worker.run_item``) with a progress
bar, stopped all at once on Ctrl-C (docs/design.md, "Process lifetime").
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import signal
import socket
import uuid
from pathlib import Path

from fmnist_mlp.engine import worker
from fmnist_mlp.engine.worker import MATRIX, EngineError, ItemResult, Workspace, log, run_item

ITEM_LOGS = Path("logs/repro")  # one log per item, new each run
WORKER_MEMORY = 1.5 * 2**30  # bytes one item's process takes at most (TensorFlow, the data)
RESULT_PACKAGES = ("numpy", "scipy", "scikit-learn", "tensorflow", "keras", "dvc")  # their
# versions make the results' bytes: the same on every worker as here


def default_jobs(items: int) -> int:
    """Every core, as many as memory allows, no more than there are items."""
    from fmnist_mlp.core.resources import available_memory, cores

    return max(1, min(cores(), items, int(available_memory() // WORKER_MEMORY)))


def local_cluster(jobs: int):
    """``jobs`` single-threaded workers in this process, talking through memory (inproc://);
    their HTTP servers listen on the loopback interface alone, on ports the system picks (Dask's
    ``dashboard_address=None`` would still listen on every interface, on port 8787)."""
    from dask.distributed import LocalCluster

    return LocalCluster(n_workers=jobs, threads_per_worker=1, processes=False,
                        dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0",
                        silence_logs=logging.CRITICAL)


def reach(scheduler: str, timeout: float = 10) -> None:
    """A TCP connection to ``scheduler``'s host and port, or EngineError: at once if refused,
    after ``timeout`` s if nothing answers (Dask's client retries a refused port until its own
    timeout)."""
    from distributed.comm import parse_address, parse_host_port

    protocol, location = parse_address(scheduler)
    if protocol not in ("tcp", "tls"):
        return
    try:
        host, port = parse_host_port(location)
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        raise EngineError(f"--scheduler {scheduler}: no answer within {timeout:g} s") from None
    except (OSError, ValueError) as e:
        raise EngineError(f"--scheduler {scheduler}: cannot connect: "
                          f"{getattr(e, 'strerror', None) or e}") from None


def connect(scheduler: str):
    """A client of ``scheduler`` with a worker whose packages are this machine's; the task code
    (worker.py) will be sent to it by value."""
    import cloudpickle
    from dask.distributed import Client

    reach(scheduler)
    if scheduler.startswith("tcp://") and not re.match(r"tcp://(127\.|localhost|\[::1\])",
                                                        scheduler):
        log("tcp:// is neither encrypted nor authenticated: whoever reaches the scheduler runs "
            "code on its workers; use tls:// (docs/cluster.md)")
    cloudpickle.register_pickle_by_value(worker)
    try:
        client = Client(scheduler, timeout=60)
        client.wait_for_workers(1, timeout=60)
    except (OSError, TimeoutError) as e:
        raise EngineError(f"--scheduler {scheduler}: no scheduler with a worker answered within "
                          f"60 s ({type(e).__name__})") from None
    if differ := other_versions(client):
        client.close()
        raise EngineError(f"--scheduler {scheduler}: the workers' packages differ, their bytes "
                          f"would too: {'; '.join(differ)}")
    return client


def other_versions(client) -> list[str]:
    """Each package of ``RESULT_PACKAGES`` whose version on a worker of ``client`` is not this
    machine's, as `NAME VERSION on WORKER (here VERSION)`."""
    versions = client.get_versions(packages=list(RESULT_PACKAGES))
    ours = versions["client"]["packages"]
    return sorted({f"{name} {info['packages'].get(name)} on {address} (here {ours.get(name)})"
                   for address, info in versions["workers"].items() for name in RESULT_PACKAGES
                   if info["packages"].get(name) != ours.get(name)})


def run_items(root: Path, items: tuple[str, ...], workspace: Workspace, jobs: int,
              scheduler: str | None, remote_client=None) -> list[ItemResult]:
    """Every item as a Dask task (on ``remote_client``, ``scheduler``'s, else on a local
    cluster of ``jobs`` workers), with a progress bar; EngineError naming each failed one."""
    from dask.distributed import Client, as_completed
    from tqdm import tqdm

    local = None if scheduler else local_cluster(jobs)
    client = remote_client or Client(local)
    stop_event, logs_here = f"stop-{uuid.uuid4().hex}", workspace.remote is None
    log(f"{len(items)} {MATRIX} items on {len(client.scheduler_info()['workers'])} worker(s)"
        f"{' at ' + scheduler if scheduler else ''} (logs in {ITEM_LOGS}/)")
    sent = client.scatter(workspace, broadcast=True)  # the tree's files sent once per worker
    futures = {client.submit(run_item, item, sent, stop_event,
                             str(root / ITEM_LOGS / f"{item}.log") if logs_here else None,
                             key=f"{item}-{stop_event}", pure=False): item for item in items}
    results = []
    try:
        with tqdm(total=len(items), desc=f"{MATRIX} items", unit="item") as bar:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception as e:  # the task's own error (its workspace), raised here
                    error = " ".join(f"{type(e).__name__}: {e}".split())
                    result = ItemResult(futures[future], error, log_text=f"{error}\n")
                if result.log_text is not None:
                    (root / ITEM_LOGS / f"{result.item}.log").write_text(result.log_text)
                bar.write(f"{result.item}: " + ("failed" if result.error else "trained"
                          if result.trained else "restored from the run-cache"))
                bar.update(1)
                results.append(result)
    except BaseException:  # Ctrl-C above all
        stop_every_item(client, stop_event, list(futures), local=local is not None)
        raise
    finally:
        if not logs_here:  # the workers' workspaces (their DVC cache stays: data pulled once)
            client.run(shutil.rmtree, workspace.base, True, on_error="ignore")
        if local is not None:
            client.close()
            local.close()
    if failed := [r for r in results if r.error]:
        raise EngineError(f"{len(failed)} of {len(items)} item(s) failed, nothing assembled: "
                          + "; ".join(f"{r.item}: {r.error} (log: {ITEM_LOGS}/{r.item}.log)"
                                      for r in failed))
    return results


def stop_every_item(client, stop_event: str, futures: list, local: bool) -> None:
    """Ctrl-C's end of the items: the Dask Event ``stop_event`` set (each task kills its dvc's
    process group within a second), the tasks awaited up to 30 s, then, on a ``local`` cluster,
    every descendant of this process still alive killed (psutil)."""
    import psutil
    from dask.distributed import Event, wait

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot cut this short
    Event(stop_event, client).set()
    with contextlib.suppress(TimeoutError):
        wait(futures, timeout=30)
    left = psutil.Process().children(recursive=True) if local else []
    for process in left:
        process.kill()
    psutil.wait_procs(left, timeout=30)
