"""Loss landscape on a plane theta(a, b) = c + a d1 + b d2 through an SGD trajectory.

The plane is spanned by the trajectory's first two principal components (the seed) or by Li et
al.'s (2018) filter-normalised random directions, through the trajectory's mean (the seed) or its
final point (Li et al.). The loss drawn is the mean cross-entropy WITHOUT the L2 term.

Fast evaluation: theta is affine in (a, b), so the first layer's pre-activations
X W1(a, b) = X C1 + a X D1 + b X D2 are three products computed once; the small layers after it are
evaluated with batched matmuls on cache-sized tiles of grid points x samples, on all cores.
"""

from __future__ import annotations

import threading
import typing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from pydantic import Field
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from fmnist_mlp.core import resources
from fmnist_mlp.core.params import Int, Section
from fmnist_mlp.network.spec import Activation, MLPSpec
from fmnist_mlp.numpy_mlp.mlp import evaluate, layer_slices, unpack


class LandscapeConfig(Section):
    """The loss landscape on a plane through the SGD trajectory (params section ``landscape``)."""

    SECTION = "landscape"
    center: typing.Literal["mean", "final"]
    directions: typing.Literal["pca", "random"]
    grid: Int = Field(ge=2)
    margin: float = Field(ge=0)
    samples: Int = Field(gt=0)
    seed: Int = Field(ge=0)
    chunk_mb: float = Field(gt=0)


@dataclass(frozen=True)
class Plane:
    center: np.ndarray  # (P,)
    directions: np.ndarray  # (2, P)
    explained_variance: np.ndarray  # (2,) share of the trajectory's variance along each direction

    def point(self, coords: np.ndarray) -> np.ndarray:
        return self.center + coords @ self.directions  # (..., 2) @ (2, P) -> (..., P)

    def project(self, thetas: np.ndarray) -> np.ndarray:
        """Least-squares plane coordinates (T, 2) of points (T, P)."""
        coords, *_ = np.linalg.lstsq(self.directions.T, (thetas - self.center).T, rcond=None)
        return coords.T


def filter_normalised_directions(theta: np.ndarray, spec: MLPSpec,
                                 rng: np.random.Generator) -> np.ndarray:
    """Two Gaussian directions (2, P), each filter (a unit's incoming weights) rescaled to the norm
    of the same filter of theta; bias entries zero (Li et al. 2018)."""
    directions = np.zeros((2, theta.size))
    for d in directions:
        d[:] = rng.normal(size=theta.size)
        for (W_d, b_d), (W, _) in zip(unpack(d, spec.sizes), unpack(theta, spec.sizes)):
            W_d *= np.linalg.norm(W, axis=0) / np.linalg.norm(W_d, axis=0)  # per column (unit)
            b_d[:] = 0.0
    return directions


def fit_plane(trajectory: np.ndarray, spec: MLPSpec, center: str = "mean",
              directions: str = "pca", rng: np.random.Generator | None = None) -> Plane:
    """The plane of a trajectory (T, P)."""
    pca = PCA(n_components=2, svd_solver="full").fit(trajectory)  # exact: "auto" may pick the
    # randomized solver, whose unseeded result changes in the last digits from run to run
    c = pca.mean_ if center == "mean" else trajectory[-1]
    if directions == "pca":
        d = pca.components_  # (2, P) orthonormal
    else:
        d = filter_normalised_directions(trajectory[-1], spec, rng or np.random.default_rng(0))
    deviations = trajectory - trajectory.mean(axis=0)  # (T, P)
    unit = d / np.linalg.norm(d, axis=1, keepdims=True)  # (2, P)
    total = (deviations ** 2).sum()
    explained = ((deviations @ unit.T) ** 2).sum(axis=0) / total if total > 0 else np.zeros(2)
    return Plane(np.array(c, dtype=np.float64), np.array(d, dtype=np.float64), explained)


def grid_axes(coords: np.ndarray, n: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """n values per axis spanning the coordinates' range widened by ``margin`` of it each side.

    An axis along which the trajectory does not move (a two-snapshot trajectory has one: its
    rounding-level spread is not a range) gets half the other axis' span on each side."""
    lows, highs = coords.min(axis=0), coords.max(axis=0)  # (2,), (2,)
    scale = (highs - lows).max() or 1.0
    axes = []
    for lo, hi in zip(lows, highs):
        pad = margin * (hi - lo) if hi - lo > 1e-9 * scale else 0.5 * scale
        axes.append(np.linspace(lo - pad, hi + pad, n))
    return axes[0], axes[1]


def plane_loss_naive(plane: Plane, spec: MLPSpec, X: np.ndarray, Y: np.ndarray,
                     ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seed's way: per point, map back to theta and run a full forward pass. ab (G, 2)."""
    results = np.array([evaluate(plane.point(p), X, Y, spec) for p in ab])  # (G, 2)
    return results[:, 0], results[:, 1]


def plane_loss(plane: Plane, spec: MLPSpec, X: np.ndarray, Y: np.ndarray, ab: np.ndarray,
               chunk_mb: float = 2.0, threads: int | None = None,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy (no L2) and accuracy at each point ab (G, 2) of the plane, vectorised.

    The first layer's pre-activations are affine in (a, b): three products computed once
    (first_layer_products). The later layers run on tiles of (grid points x samples) whose
    activations (g, units, n) take about ``chunk_mb`` each, so that they stay in cache. The grid
    is shared out among ``threads`` threads (default: the available cores), BLAS single-threaded;
    each point's sum over sample blocks runs in one thread in a fixed order, so the result does
    not depend on the thread count. A tie for the top logit counts as correct.
    """
    X = np.asarray(X, dtype=np.float64)
    sizes = spec.sizes
    labels = Y.argmax(axis=1)  # (N,)
    N, widest = len(X), max(sizes[1:]) + 1
    bounds = np.linspace(0, N, -(-N // 4096) + 1).astype(int)  # sample blocks of <= 4096
    step = max(1, int(chunk_mb * 2 ** 20 // (8 * widest * bounds[1])))  # grid points per tile
    products = first_layer_products(plane, spec, X)  # (3, h, N)
    # per block: its first-layer products (3, h, n) and where Z[y_j, j] sits in a (C, n) block
    blocks = [(np.ascontiguousarray(products[:, :, lo:hi]), labels[lo:hi] * (hi - lo) +
               np.arange(hi - lo)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    # After the first layer, theta is the parameter vector of a network with sizes[1:]:
    later = slice(layer_slices(sizes)[0][1].stop, None)
    basis = np.vstack([plane.center[later], plane.directions[:, later]])  # (3, P_later)
    loss_sum, correct = np.zeros(len(ab)), np.zeros(len(ab))
    workers = threads or resources.cores()
    bar = tqdm(total=len(ab) * N, unit="pt-img", unit_scale=True, desc="landscape",
               disable=not progress, leave=False)

    per_thread, bar_lock = threading.local(), threading.Lock()

    def run(starts: np.ndarray) -> None:  # these grid chunks, all sample blocks
        workspace = per_thread.__dict__.setdefault("workspace", _Workspace())
        for g in starts:
            for first, label_index in blocks:
                tile_loss, tile_correct = _tile_sums(basis, sizes[1:], spec.act, first,
                                                     label_index, ab[g:g + step], workspace)
                loss_sum[g:g + step] += tile_loss  # chunks are disjoint across threads
                correct[g:g + step] += tile_correct
                with bar_lock:  # tqdm's counter is not atomic
                    bar.update(len(tile_loss) * len(label_index))

    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool, bar:
        # a few shares per thread, handed out as threads get free: no thread idles at the end
        list(pool.map(run, np.array_split(np.arange(0, len(ab), step), 8 * workers)))
    return loss_sum / N, correct / N


def loss_grid(plane: Plane, spec: MLPSpec, X: np.ndarray, Y: np.ndarray, A: np.ndarray,
              B: np.ndarray, chunk_mb: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy and accuracy at every point (A[j], B[i]) of the plane: two (len(B), len(A))
    grids, a row per value of B (as matplotlib's surfaces and contours want them)."""
    ab = np.stack(np.meshgrid(A, B), axis=-1).reshape(-1, 2)  # (len(B) len(A), 2)
    loss, accuracy = plane_loss(plane, spec, X, Y, ab, chunk_mb, progress=True)
    return loss.reshape(len(B), len(A)), accuracy.reshape(len(B), len(A))


def first_layer_products(plane: Plane, spec: MLPSpec, X: np.ndarray) -> np.ndarray:
    """(3, h, N): the first layer's pre-activations at the centre, X C1 + c_b, and along each
    direction, X D1 + d1_b and X D2 + d2_b; at (a, b) they combine as [1, a, b] @ them."""
    layers = [unpack(v, spec.sizes)[0] for v in (plane.center, *plane.directions)]
    W = np.concatenate([W for W, _ in layers], axis=1)  # (n_in, 3h)
    bias = np.concatenate([b for _, b in layers])  # (3h,)
    products = X @ W + bias  # (N, n_in) @ (n_in, 3h) -> (N, 3h)
    return np.ascontiguousarray(products.T.reshape(3, spec.sizes[1], len(X)))  # (3, h, N)


def _tile_sums(basis: np.ndarray, later_sizes: tuple[int, ...], act: Activation,
               first: np.ndarray, label_index: np.ndarray, ab: np.ndarray,
               workspace: _Workspace) -> tuple[np.ndarray, np.ndarray]:
    """Summed cross-entropy and number correct (G,) at points ab (G, 2) over one block of n
    samples: first (3, h, n) from first_layer_products; label_index (n,) = y_j n + j, the flat
    index of sample j's true logit in a (C, n) logits block; basis (3, P_later) holds [c; d1; d2]
    of the layers after the first, a network of sizes ``later_sizes`` = sizes[1:] whose inputs
    go through the hidden activation ``act`` first.

    Each layer's block of theta, W (in, out) then b (out,), is the augmented matrix [W; b]
    (in + 1, out), so with activations carrying a row of ones, H_aug = [H; 1] (in + 1, n), a layer
    is one product [W; b]^T H_aug."""
    G, (_, h, n) = len(ab), first.shape
    coefs = np.column_stack([np.ones(G), ab])  # (G, 3): theta(a, b) = [1, a, b] @ [c; d1; d2]
    thetas = coefs @ basis  # (G, 3) @ (3, P_later) -> (G, P_later)
    hidden = len(later_sizes) > 1  # else the first layer is the output layer
    H = workspace.activations(0, (G, h, n), ones_row=hidden)  # (G, h (+ 1), n), last row ones
    np.matmul(coefs, first.reshape(3, h * n), out=H[:, :h].reshape(G, h * n))  # (G, 3) @ (3, h n)
    for layer, ((w, b), n_in, n_out) in enumerate(
            zip(layer_slices(later_sizes), later_sizes[:-1], later_sizes[1:]), start=1):
        act.apply(H[:, :n_in])  # the first layer's pre-activations, then each hidden layer's
        Wt = thetas[:, w.start:b.stop].reshape(G, n_in + 1, n_out).transpose(0, 2, 1)  # (G, o, i+1)
        last = layer == len(later_sizes) - 1
        Z = workspace.activations(layer, (G, n_out, n), ones_row=not last)  # (G, o (+ 1), n)
        np.matmul(Wt, H, out=Z[:, :n_out])  # (G, out, in + 1) @ (G, in + 1, n) -> (G, out, n)
        H = Z
    Z = H  # (G, out, n) logits
    top = Z.max(axis=1)  # (G, n)
    z_label = np.take(Z.reshape(G, -1), label_index, axis=1)  # Z[g, y_j, j] (G, n)
    correct = np.count_nonzero(z_label >= top, axis=1)  # (G,)
    if -700.0 < top.min() and top.max() < 700.0:  # exp(Z) can't overflow nor sum to zero
        log_total = np.log(np.exp(Z, out=Z).sum(axis=1))  # logsumexp, no shift needed (G, n)
    else:
        Z -= top[:, None, :]
        log_total = np.log(np.exp(Z, out=Z).sum(axis=1)) + top  # logsumexp (G, n)
    return (log_total - z_label).sum(axis=1), correct


class _Workspace:
    """One thread's work arrays, reused across tiles: allocating megabyte arrays afresh costs
    page faults that would cost more than the arithmetic."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[int, bool, tuple[int, ...]], np.ndarray] = {}

    def activations(self, layer: int, shape: tuple[int, int, int], ones_row: bool) -> np.ndarray:
        """(G, units (+ 1), n) for a layer's activations, with a last row of ones if asked.
        Layers two apart share one array if alike (a layer only reads the previous one); an array
        with a ones row is never handed out without, where its ones would be overwritten."""
        G, units, n = shape
        key = (layer % 2, ones_row, (G, units + ones_row, n))
        if key not in self.buffers:
            self.buffers[key] = np.ones(key[2])
        return self.buffers[key]



@dataclass(frozen=True)
class TrajectoryFit:
    coords: np.ndarray  # (T, 2) plane coordinates of each snapshot
    true_loss: np.ndarray  # (T,) loss at the snapshot itself
    plane_loss: np.ndarray  # (T,) loss at its projection on the plane
    off_plane: np.ndarray  # (T,) distance from the plane / trajectory length


def trajectory_fit(plane: Plane, trajectory: np.ndarray, spec: MLPSpec, X: np.ndarray,
                   Y: np.ndarray) -> TrajectoryFit:
    """How faithfully the plane shows the trajectory."""
    coords = plane.project(trajectory)  # (T, 2)
    true = np.array([evaluate(t, X, Y, spec)[0] for t in trajectory])  # (T,)
    on_plane, _ = plane_loss(plane, spec, X, Y, coords)
    length = np.linalg.norm(np.diff(trajectory, axis=0), axis=1).sum()
    distance = np.linalg.norm(trajectory - plane.point(coords), axis=1)  # (T,)
    return TrajectoryFit(coords, true, on_plane, distance / length if length > 0 else distance)
