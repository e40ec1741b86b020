"""The landscape grid: the vectorised evaluator against the seed's way (per point: map back to
theta, full forward pass), same plane, grid and samples, in one run. Needs models/scratch and
data/prepared (``dvc repro train_scratch``).

The seed's way is timed twice: with this project's forward pass (X W, examples as rows: the
headline ratio, conservative) and as the seed's code lays it out (W X^T, examples as columns,
each W_l stored (out, in)), which BLAS runs slower here.

Each side runs REPEATS times, interleaved, and its fastest time counts (timeit's convention: the
slower runs measure other load on the machine, not the code).

Usage: python -m bench.landscape [GRID] [SAMPLES] [REPEATS]
"""

import os
import sys
import time

import numpy as np

from fmnist_mlp.core.data import load_split
from fmnist_mlp.landscape.plane import fit_plane, grid_axes, plane_loss, plane_loss_naive
from fmnist_mlp.numpy_mlp.mlp import cross_entropy, log_softmax, unpack
from fmnist_mlp.numpy_mlp.scratch import load_model, load_trajectory


def timed(f, *args):
    start = time.perf_counter()
    result = f(*args)
    return time.perf_counter() - start, result


def best_of(repeats: int, *calls):
    """[(fastest seconds, result)] of each call, the calls interleaved ``repeats`` times."""
    runs = [[timed(call) for call in calls] for _ in range(repeats)]
    return [(min(run[i][0] for run in runs), runs[-1][i][1]) for i in range(len(calls))]


def seed_layout_loss(plane, spec, X, Y, ab) -> np.ndarray:
    """Per point: theta(a, b), then the seed's forward pass in its layout (features, N) with each
    W_l as an (out, in) matrix; the correct mean cross-entropy (the seed's own loss is wrong)."""
    XT = np.ascontiguousarray(X.T)  # (n_in, N)
    losses = np.empty(len(ab))
    for g, point in enumerate(ab):
        layers = [(np.ascontiguousarray(W.T), b[:, None])
                  for W, b in unpack(plane.point(point), spec.sizes)]  # [((out, in), (out, 1))]
        A = XT
        for W, b in layers[:-1]:
            A = spec.act.apply(W @ A + b)  # (out, in) @ (in, N)
        Z = layers[-1][0] @ A + layers[-1][1]  # (C, N)
        losses[g] = cross_entropy(log_softmax(Z.T), Y)
    return losses


def main(grid: int = 100, samples: int = 2500, repeats: int = 3) -> None:
    _, spec = load_model("models/scratch")
    trajectory = load_trajectory("models/scratch", spec)  # (T, P)
    train = load_split("data/prepared", "train")
    X, Y = train.X[:samples].astype(np.float64), train.Y[:samples]
    plane = fit_plane(trajectory, spec)
    A, B = grid_axes(plane.project(trajectory), grid, 0.1)
    ab = np.stack(np.meshgrid(A, B), axis=-1).reshape(-1, 2)  # (grid^2, 2)

    (fast_s, (fast, _)), (single_s, (single, _)), (naive_s, (naive, _)), (seed_s, seed) = best_of(
        repeats, lambda: plane_loss(plane, spec, X, Y, ab),
        lambda: plane_loss(plane, spec, X, Y, ab, threads=1),
        lambda: plane_loss_naive(plane, spec, X, Y, ab),
        lambda: seed_layout_loss(plane, spec, X, Y, ab))
    print(f"{len(ab)} grid points, {len(X)} samples, network {spec.describe()}, "
          f"{os.cpu_count()} cores, fastest of {repeats} interleaved runs")
    print(f"seed's way (per point forward): {naive_s:.2f} s")
    print(f"vectorised:                     {fast_s:.3f} s   (target: about 1 s)")
    print(f"vectorised on one thread:       {single_s:.3f} s   "
          f"({single_s / fast_s:.2f}x slower, identical: {np.array_equal(single, fast)})")
    print(f"speed-up: {naive_s / fast_s:.1f}x (target >= 20x); "
          f"max |difference| {np.abs(fast - naive).max():.2e} (target <= 1e-9)")
    print(f"seed's way in the seed's layout: {seed_s:.2f} s, speed-up {seed_s / fast_s:.1f}x, "
          f"max |difference| {np.abs(fast - seed).max():.2e}")

    full_X = train.X.astype(np.float64)
    full_s, _ = timed(plane_loss, plane, spec, full_X, train.Y, ab)
    print(f"vectorised on the whole train split ({len(full_X)} samples): {full_s:.1f} s "
          f"(target <= 30 s)")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
