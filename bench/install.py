"""`make setup`'s venv, the old way against the new, in one run on this machine: wall seconds from
`python3 -m venv` to the project installed in editable mode, the same requirements.lock.

- pip (the old way): `pip install --no-deps -r requirements.lock`, then `pip install --no-deps
  --no-build-isolation -e .`, with pip's cache warm (one untimed install first, unless
  ``--cold``: then pip's cache is a new empty directory too);
- uv (the Makefile's way): pip installs the lock's uv, `uv pip sync requirements.lock`, `uv pip
  install --no-deps --no-build-isolation -e .`, with an empty uv cache (downloads included),
  then once more with that cache warm (a second install on the same machine).

Each venv is in a temporary directory, removed after; the project's .venv is not touched.

Usage: python -m bench.install [--cold]
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = os.environ.get("PYTHON", "python3")


STEPS: dict[str, float] = {}  # the last install's steps: wall seconds


def run(argv: list[str], env: dict) -> None:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    what = [Path(argv[0]).name, *(a for a in argv[1:] if not a.startswith("--"))]
    STEPS[" ".join(what[:3])] = time.perf_counter() - start


def pip_way(venv: Path, env: dict) -> None:
    run([PYTHON, "-m", "venv", str(venv)], env)
    run([f"{venv}/bin/pip", "install", "--quiet", "--no-deps", "-r", "requirements.lock"], env)
    run([f"{venv}/bin/pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e",
         "."], env)


def uv_way(venv: Path, env: dict) -> None:
    (pin,) = re.findall(r"^uv==\S+$", (ROOT / "requirements.lock").read_text(), re.M)
    python = f"{venv}/bin/python"
    run([PYTHON, "-m", "venv", str(venv)], env)
    run([f"{venv}/bin/pip", "install", "--quiet", "--no-deps", pin], env)
    run([f"{venv}/bin/uv", "pip", "sync", "--quiet", "--python", python, "requirements.lock"],
        env)
    run([f"{venv}/bin/uv", "pip", "install", "--quiet", "--python", python, "--no-deps",
         "--no-build-isolation", "-e", "."], env)


def timed(way, venv: Path, env: dict) -> float:
    STEPS.clear()
    start = time.perf_counter()
    way(venv, env)
    seconds = time.perf_counter() - start
    shutil.rmtree(venv)
    print("  " + "; ".join(f"{step}: {t:.1f} s" for step, t in STEPS.items()), flush=True)
    return seconds


def main() -> int:
    cold = "--cold" in sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        tmp = Path(tmp)
        pip_env = dict(os.environ)
        if cold:
            pip_env["PIP_CACHE_DIR"] = str(tmp / "pip-cache")
        else:
            warm = timed(pip_way, tmp / "warm", pip_env)
            print(f"pip, warming its cache (not compared): {warm:.1f} s", flush=True)
        pip = timed(pip_way, tmp / "pip", pip_env)
        print(f"pip ({'empty' if cold else 'warm'} cache): {pip:.1f} s", flush=True)
        uv_env = dict(os.environ, UV_CACHE_DIR=str(tmp / "uv-cache"))
        uv = timed(uv_way, tmp / "uv", uv_env)
        print(f"uv (empty cache, downloads included): {uv:.1f} s", flush=True)
        again = timed(uv_way, tmp / "uv-again", uv_env)
        print(f"uv again, its cache now warm (not compared): {again:.1f} s", flush=True)
        print(f"uv / pip: {uv / pip:.2f}; saved {pip - uv:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
