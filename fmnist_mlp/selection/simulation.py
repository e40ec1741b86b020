"""Grids drawn with a known truth and the committed search's design, to check select's
statistics against: 3 x 2 x 2 items (layers, units, batch), seeds as blocks, each run checkpointed
at 20 and 40 epochs, noise in three parts (seed block, run, checkpoint); and how often the effect
intervals (factorial.py) cover the true effects and the possibly-best set (best.py) holds the
true best. No stage runs this: tests/test_best.py and bench/coverage.py do.
"""

import itertools

import numpy as np

from fmnist_mlp.selection.best import mcb
from fmnist_mlp.selection.factorial import Runs, analyse

CELLS = list(itertools.product((3, 4, 5), (30, 40), (64, 128)))  # (layers, units, batch)
AXES = ("hidden_layers", "hidden_units", "batch_size")
NOISE = (0.004, 0.0035, 0.004)  # seed block, run, checkpoint: the committed run's estimates


def truth(layers, units, batch) -> np.ndarray:
    """(2,) true accuracy at 20 and 40 epochs: main effects of every axis, a layers x units and
    an epochs x batch interaction."""
    base = 0.87 + 0.003 * (layers == 4) + 0.001 * (layers == 5) + 0.005 * (units == 40) \
        - 0.001 * (batch == 128) + 0.004 * (layers == 5) * (units == 40)
    return np.array([base, base + 0.002 + 0.003 * (batch == 64)])


def flat(layers, units, batch) -> np.ndarray:
    """Every configuration equal: MCB's least favourable case."""
    return np.array([0.87, 0.87])


def draw(rng, mean_of, seeds: int = 3, noise=NOISE, epochs=(20, 40)) -> Runs:
    """One grid: mean_of(cell) plus a block per seed, a run effect and checkpoint noise."""
    K = len(epochs)
    blocks = rng.normal(0, noise[0], seeds)
    y = [mean_of(*c)[:K] + blocks[s] + rng.normal(0, noise[1]) + rng.normal(0, noise[2], K)
         for c in CELLS for s in range(seeds)]
    return Runs(np.array(y).reshape(-1, K),
                {a: np.array([c[i] for c in CELLS for _ in range(seeds)], dtype=object)
                 for i, a in enumerate(AXES)},
                {"hidden_layers": (3, 4, 5), "hidden_units": (30, 40), "batch_size": (64, 128)},
                np.tile(np.arange(seeds), len(CELLS)).astype(object), tuple(epochs),
                np.repeat(np.arange(len(CELLS)), seeds))


def true_effects(mean_of, K: int = 2) -> dict:
    """{(axis, level): the true effect}: level means over every cell (and epoch) alike."""
    M = np.array([mean_of(*c)[:K] for c in CELLS])  # (12, K)
    out = {("epochs", 40): float((M[:, 1] - M[:, 0]).mean())} if K > 1 else {}
    for i, a in enumerate(AXES):
        at = np.array([c[i] for c in CELLS])
        levels = sorted(set(at.tolist()))
        out |= {(a, v): float(M[at == v].mean() - M[at == levels[0]].mean()) for v in levels[1:]}
    return out


def config_means(runs: Runs) -> np.ndarray:
    """(C,) each configuration's mean over the seeds, item-major as select orders them."""
    return np.array([runs.y[runs.items == i].mean(axis=0) for i in range(len(CELLS))]).ravel()


def coverage(rng, mean_of, reps: int, draws: int, seeds: int = 3, noise=NOISE,
             epochs=(20, 40)) -> tuple[float, float]:
    """(the effect intervals' coverage, how often the set holds the true best: under ``flat``,
    configuration 0) over ``reps`` grids."""
    K = len(epochs)
    effects = true_effects(mean_of, K)
    best = int(np.argmax(np.ravel([mean_of(*c)[:K] for c in CELLS])))
    items = np.repeat(np.arange(len(CELLS)), K)
    covered, held = [], []
    for rep in range(reps):
        runs = draw(rng, mean_of, seeds, noise, epochs)
        a = analyse(runs, alpha=0.05)
        covered += [r["low"] <= effects[r["axis"], r["level"]] <= r["high"]
                    for r in a["levels"] if "effect" in r]
        held.append(mcb(config_means(runs), items, a["cell_noise"], K, seeds, 0.05, draws, rep)
                    ["possibly_best"][best])
    return float(np.mean(covered)), float(np.mean(held))
