"""Were the committed outputs reproduced byte for byte? Compares the output hashes of the
committed dvc.lock (git HEAD) with those of the workspace's dvc.lock, which `dvc repro` rewrote
from the files it produced, and asks DVC whether the workspace matches its dvc.lock.

Usage: python -m fmnist_mlp.engine.verify   (after `dvc repro`; `make verify` forces the whole rerun)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from fmnist_mlp.engine.cluster import dvc, stage_env


def output_hashes(lock_text: str, stages: set[str] | None = None) -> dict[str, str]:
    """{output path: md5} of every stage in a dvc.lock (of ``stages`` only, if given)."""
    locked = (yaml.safe_load(lock_text) or {}).get("stages", {})
    return {out["path"]: out.get("md5", "") for name, stage in locked.items()
            if stages is None or name in stages for out in stage.get("outs", [])}


def pipeline_stages(root: str | Path = ".") -> set[str]:
    """The stages dvc.yaml defines now (matrix items by name): a stage that was removed from
    the pipeline is no output of it, even while an old dvc.lock still records it."""
    listed = subprocess.run(dvc("stage", "list", "--name-only"), cwd=root, check=True,
                            capture_output=True, text=True, env=stage_env()).stdout
    return set(listed.split())


def compare(committed: dict[str, str], current: dict[str, str]) -> list[str]:
    """The committed outputs whose hash differs or that were not produced."""
    return [path for path, md5 in committed.items() if current.get(path) != md5]


def main() -> int:
    stages = pipeline_stages()
    committed = output_hashes(subprocess.run(["git", "show", "HEAD:dvc.lock"], check=True,
                                             capture_output=True, text=True).stdout, stages)
    current = output_hashes(Path("dvc.lock").read_text())
    differ = compare(committed, current)
    status = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    stale = sorted(json.loads(status.stdout or "{}")) if status.returncode == 0 else ["dvc status"]
    line = (f"verify: {len(committed) - len(differ)} of {len(committed)} committed outputs "
            f"reproduced byte for byte")
    if differ:
        line += f"; differ: {', '.join(differ)}"
    if stale:
        line += f"; not up to date with dvc.lock: {', '.join(stale)}"
    print(line)
    return 1 if differ or stale else 0


if __name__ == "__main__":
    sys.exit(main())
