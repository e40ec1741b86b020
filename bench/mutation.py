"""make mutate: mutation testing of the modules that compute results (mutmut, configured in
pyproject.toml's [tool.mutmut]: the modules, the unit tests that cover them, the lines whose
mutants only change what a person reads). Each mutant runs the tests that reach its function; a
test that fails (or hangs past mutmut's timeout) kills it.

Prints each module's counts, every surviving mutant as its changed line, the mutants marked
equivalent in [tool.mutmut.equivalent] with their reasons, and last `mutation score S %`:
killed / (mutants run - equivalent), a mutant no test reaches counting as a survivor.
Usage: python -m bench.mutation [MUTANT_GLOB ...]   (about 5 min on 2 cores; results in mutants/)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

from fmnist_mlp.core.resources import cores

ROOT = Path(__file__).resolve().parents[1]
DETECTED = {"killed", "timeout", "segfault"}  # the tests noticed the mutant


def mutants() -> dict[str, list[tuple[str, str]]]:
    """Every mutant's (name, status) by its module, from mutmut's results in mutants/."""
    from mutmut.__main__ import walk_mutatable_files
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code

    found = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        found[str(path)] = [(name, status_by_exit_code[code])
                            for name, code in sorted(data.exit_code_by_key.items())]
    return found


def changed_line(name: str) -> str:
    """The mutant's line as mutmut wrote it (the first added line of its diff)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    added = [line[1:].strip() for line in get_diff_for_mutant(name).splitlines()
             if line.startswith("+") and not line.startswith("+++")]
    return added[0] if added else "(a line removed)"


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    equivalent = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"].get(
        "equivalent", {})
    run = subprocess.run([sys.executable, "-m", "mutmut", "run",
                          "--max-children", str(cores()), *argv])
    if run.returncode != 0:  # 1: the unmutated tests failed, so no verdict means anything
        print(f"make mutate: mutmut run failed (exit {run.returncode})", file=sys.stderr)
        return run.returncode
    found = mutants()
    unrun = sum(status == "not checked" for results in found.values() for _, status in results)
    found = {path: [(name, status) for name, status in results if status != "not checked"]
             for path, results in found.items()}  # outside a MUTANT_GLOB: no verdict, no count
    detected = survivors = 0
    print("\nmodule: detected / mutants (survived, equivalent)")
    for path, results in found.items():
        counts = Counter("equivalent" if name in equivalent else status for name, status in results)
        done = sum(counts[s] for s in DETECTED)
        left = sum(counts.values()) - done - counts["equivalent"]
        detected, survivors = detected + done, survivors + left
        print(f"  {path}: {done} / {sum(counts.values())} ({left}, {counts['equivalent']})")
    print("\nsurvivors (`mutmut show NAME` for the diff):")
    for results in found.values():
        for name, status in results:
            if status not in DETECTED and name not in equivalent:
                print(f"  {name} [{status}]: {changed_line(name)}")
    print("\nequivalent (pyproject.toml [tool.mutmut.equivalent]):")
    for name, why in equivalent.items():
        print(f"  {name}: {why}")
    total = detected + survivors
    if unrun:
        print(f"\n{unrun} mutant(s) not run (outside the MUTANT_GLOB given), not counted")
    print(f"\nmutation score {100 * detected / total if total else 0:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
