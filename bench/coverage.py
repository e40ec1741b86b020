"""The coverage of select's statistics (fmnist_mlp/selection: factorial.py's effect intervals,
best.py's possibly-best set) on grids drawn with a known truth and the committed search's design
(fmnist_mlp/selection/simulation.py). Each scenario is drawn REPS times; the table gives how
often the 95 % intervals cover the true effects and how often the set holds the true best (in
the least favourable case, every configuration equal, how often it holds a given one: MCB's
guarantee is exactly 95 % there). tests/test_best.py runs a short version.

Usage: python -m bench.coverage [REPS] [DRAWS]   (defaults 1000 grids, 10 000 MCB draws)
"""

import sys
import time

import numpy as np

from fmnist_mlp.selection.simulation import NOISE, coverage, flat, truth

SCENARIOS = [  # name, mean_of, seeds, noise, epochs
    ("the committed run's noise, effects of every kind", truth, 3, NOISE, (20, 40)),
    ("the same, every configuration equal", flat, 3, NOISE, (20, 40)),
    ("no run effect (checkpoint noise only), equal", flat, 3, (0.004, 0.0, 0.005), (20, 40)),
    ("little checkpoint noise (0.0005), equal", flat, 3, (0.004, 0.005, 0.0005), (20, 40)),
    ("one checkpoint (K = 1), equal", flat, 3, NOISE, (40,)),
    ("two seeds, effects of every kind", truth, 2, NOISE, (20, 40)),
]


def main(reps: int = 1000, draws: int = 10_000) -> None:
    print(f"{reps} grids a scenario, {draws} MCB draws; 95 % nominal "
          f"(binomial 2 s.e.: +-{2 * np.sqrt(0.95 * 0.05 / reps):.3f} for the set)")
    print("| scenario | effect intervals cover | the set holds the best |")
    print("|---|---:|---:|")
    for i, (name, mean_of, seeds, noise, epochs) in enumerate(SCENARIOS):
        start = time.perf_counter()
        cover, held = coverage(np.random.default_rng(i), mean_of, reps, draws, seeds, noise,
                               epochs)
        print(f"| {name} | {cover:.3f} | {held:.3f} |  ({time.perf_counter() - start:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
