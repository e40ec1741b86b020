"""Numerical gradient checks of ``mlp.loss_and_grad``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

from fmnist_mlp.mlp import Sizes, layer_slices, loss_and_grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||), 0 when both are zero."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


def central_difference(f, theta: np.ndarray, epsilon: float) -> np.ndarray:
    """(f(theta + eps e_i) - f(theta - eps e_i)) / (2 eps) for every coordinate i."""
    theta = theta.astype(np.float64, copy=True)
    grad = np.empty_like(theta)
    for i in range(theta.size):
        old = theta[i]
        theta[i] = old + epsilon
        f_plus = f(theta)
        theta[i] = old - epsilon
        f_minus = f(theta)
        theta[i] = old
        grad[i] = (f_plus - f_minus) / (2 * epsilon)
    return grad


@dataclass(frozen=True)
class GradcheckResult:
    check_grad: float  # scipy.optimize.check_grad: ||forward-difference grad - grad||
    relative_error: float  # central differences over all parameters
    max_layer_relative_error: float
    layer_relative_errors: tuple[float, ...]
    num_params: int


def check_gradient(theta: np.ndarray, X: np.ndarray, Y: np.ndarray, sizes: Sizes, l2: float,
                   epsilon: float = 1e-6) -> GradcheckResult:
    """Compare the analytic gradient with numerical ones, in float64."""
    theta = np.asarray(theta, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)

    def f(t):
        return loss_and_grad(t, X, Y, sizes, l2)[0]

    def g(t):
        return loss_and_grad(t, X, Y, sizes, l2)[1]

    analytic = g(theta)
    numeric = central_difference(f, theta, epsilon)
    per_layer = tuple(
        relative_error(numeric[w.start:b.stop], analytic[w.start:b.stop])
        for w, b in layer_slices(sizes)
    )
    return GradcheckResult(
        check_grad=float(scipy.optimize.check_grad(f, g, theta)),
        relative_error=relative_error(numeric, analytic),
        max_layer_relative_error=max(per_layer),
        layer_relative_errors=per_layer,
        num_params=theta.size,
    )
