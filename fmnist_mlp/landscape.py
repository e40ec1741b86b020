"""Loss landscape on a plane theta(a, b) = c + a d1 + b d2 through an SGD trajectory.

The plane is spanned by the trajectory's first two principal components (the seed) or by Li et
al.'s (2018) filter-normalised random directions, through the trajectory's mean (the seed) or its
final point (Li et al.). The loss drawn is the mean cross-entropy WITHOUT the L2 term.

Fast evaluation: theta is affine in (a, b), so the first layer's pre-activations
X W1(a, b) = X C1 + a X D1 + b X D2 are three products computed once; the small layers after it are
evaluated for a chunk of grid points at a time with batched matmuls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from fmnist_mlp.mlp import Sizes, evaluate, unpack


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


def filter_normalised_directions(theta: np.ndarray, sizes: Sizes,
                                 rng: np.random.Generator) -> np.ndarray:
    """Two Gaussian directions (2, P), each filter (a unit's incoming weights) rescaled to the norm
    of the same filter of theta; bias entries zero (Li et al. 2018)."""
    directions = np.zeros((2, theta.size))
    for d in directions:
        d[:] = rng.normal(size=theta.size)
        for (W_d, b_d), (W, _) in zip(unpack(d, sizes), unpack(theta, sizes)):
            W_d *= np.linalg.norm(W, axis=0) / np.linalg.norm(W_d, axis=0)  # per column (unit)
            b_d[:] = 0.0
    return directions


def fit_plane(trajectory: np.ndarray, sizes: Sizes, center: str = "mean",
              directions: str = "pca", rng: np.random.Generator | None = None) -> Plane:
    """The plane of a trajectory (T, P)."""
    pca = PCA(n_components=2).fit(trajectory)
    c = pca.mean_ if center == "mean" else trajectory[-1]
    if directions == "pca":
        d = pca.components_  # (2, P) orthonormal
    else:
        d = filter_normalised_directions(trajectory[-1], sizes, rng or np.random.default_rng(0))
    deviations = trajectory - trajectory.mean(axis=0)  # (T, P)
    unit = d / np.linalg.norm(d, axis=1, keepdims=True)  # (2, P)
    total = (deviations ** 2).sum()
    explained = ((deviations @ unit.T) ** 2).sum(axis=0) / total if total > 0 else np.zeros(2)
    return Plane(np.array(c, dtype=np.float64), np.array(d, dtype=np.float64), explained)


def grid_axes(coords: np.ndarray, n: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """n values per axis spanning the coordinates' range widened by ``margin`` of it each side."""
    axes = []
    for lo, hi in zip(coords.min(axis=0), coords.max(axis=0)):
        pad = margin * (hi - lo) if hi > lo else 1.0
        axes.append(np.linspace(lo - pad, hi + pad, n))
    return axes[0], axes[1]


def plane_loss_naive(plane: Plane, sizes: Sizes, X: np.ndarray, Y: np.ndarray,
                     ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seed's way: per point, map back to theta and run a full forward pass. ab (G, 2)."""
    results = np.array([evaluate(plane.point(p), X, Y, sizes) for p in ab])  # (G, 2)
    return results[:, 0], results[:, 1]


def plane_loss(plane: Plane, sizes: Sizes, X: np.ndarray, Y: np.ndarray, ab: np.ndarray,
               chunk_mb: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy (no L2) and accuracy at each point ab (G, 2) of the plane, vectorised.

    Activations are kept as (G, units, N): each later layer is one stacked product
    W(a, b)^T (G, n_out, n_in) @ H (G, n_in, N), and the softmax reduces over the units axis.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = Y.argmax(axis=1)  # (N,)
    C, D1, D2 = (unpack(v, sizes) for v in (plane.center, *plane.directions))
    (Wc, bc), (W1, b1), (W2, b2) = C[0], D1[0], D2[0]
    XC = (X @ Wc + bc).T  # (N, n_in) @ (n_in, h) -> (h, N)
    XD1 = (X @ W1 + b1).T  # (h, N)
    XD2 = (X @ W2 + b2).T  # (h, N)
    N, widest = len(X), max(sizes[1:])
    per_point = 4 * N * widest * 8  # bytes of the largest temporaries for one grid point
    step = max(1, int(chunk_mb * 2 ** 20 // per_point))
    losses, accuracies = np.empty(len(ab)), np.empty(len(ab))
    for start in range(0, len(ab), step):
        a = ab[start:start + step, 0][:, None, None]  # (G, 1, 1)
        b = ab[start:start + step, 1][:, None, None]  # (G, 1, 1)
        Z = XC + a * XD1 + b * XD2  # (G, h, N)
        for (Wc, bc), (W1, b1), (W2, b2) in zip(C[1:], D1[1:], D2[1:]):
            Wt = (Wc.T + a * W1.T + b * W2.T)  # W(a, b)^T (G, n_out, n_in)
            bias = (bc + a[:, 0] * b1 + b[:, 0] * b2)[:, :, None]  # (G, n_out, 1)
            H = np.maximum(Z, 0.0, out=Z)  # (G, n_in, N)
            Z = Wt @ H  # (G, n_out, n_in) @ (G, n_in, N) -> (G, n_out, N)
            Z += bias
        top = Z.max(axis=1)  # (G, N)
        log_total = np.log(np.exp(Z - top[:, None, :]).sum(axis=1)) + top  # logsumexp (G, N)
        z_label = np.take_along_axis(Z, labels[None, None, :], axis=1)[:, 0]  # (G, N)
        losses[start:start + step] = (log_total - z_label).mean(axis=1)
        accuracies[start:start + step] = (Z.argmax(axis=1) == labels).mean(axis=1)
    return losses, accuracies


@dataclass(frozen=True)
class TrajectoryFit:
    coords: np.ndarray  # (T, 2) plane coordinates of each snapshot
    true_loss: np.ndarray  # (T,) loss at the snapshot itself
    plane_loss: np.ndarray  # (T,) loss at its projection on the plane
    off_plane: np.ndarray  # (T,) distance from the plane / trajectory length


def trajectory_fit(plane: Plane, trajectory: np.ndarray, sizes: Sizes, X: np.ndarray,
                   Y: np.ndarray) -> TrajectoryFit:
    """How faithfully the plane shows the trajectory."""
    coords = plane.project(trajectory)  # (T, 2)
    true = np.array([evaluate(t, X, Y, sizes)[0] for t in trajectory])  # (T,)
    on_plane, _ = plane_loss(plane, sizes, X, Y, coords)
    length = np.linalg.norm(np.diff(trajectory, axis=0), axis=1).sum()
    distance = np.linalg.norm(trajectory - plane.point(coords), axis=1)  # (T,)
    return TrajectoryFit(coords, true, on_plane, distance / length if length > 0 else distance)
