"""Numerical gradient checks of ``mlp.loss_and_grad``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
from pydantic import Field

from fmnist_mlp.core.params import Int, Section
from fmnist_mlp.network.spec import MLPSpec
from fmnist_mlp.numpy_mlp.mlp import (
    cross_entropy,
    l2_mask,
    layer_activations,
    layer_slices,
    log_softmax,
    loss_and_grad,
    unpack,
)


class GradcheckConfig(Section):
    SECTION = "gradcheck"
    samples: Int = Field(gt=0)
    epsilon: float = Field(gt=0)
    tolerance: float = Field(gt=0)


def log10_error(relative_error: float) -> float:
    """log10 of a relative error, floored at float64's -16 (an exact match has no log): -8 reads
    "agrees to 8 digits"."""
    return float(np.log10(max(relative_error, 1e-16)))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||), 0 when both are zero."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


def central_difference(f, theta: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """With ``f(theta) -> (value, pattern)``: (f(theta + eps e_i) - f(theta - eps e_i)) / (2 eps)
    for every coordinate i (P,), and whether either step changed the pattern (P,) bool."""
    theta = theta.astype(np.float64, copy=True)
    grad, crossed = np.empty_like(theta), np.zeros(theta.size, dtype=bool)
    _, here = f(theta)
    for i in range(theta.size):
        old = theta[i]
        theta[i] = old + epsilon
        f_plus, p_plus = f(theta)
        theta[i] = old - epsilon
        f_minus, p_minus = f(theta)
        theta[i] = old
        grad[i] = (f_plus - f_minus) / (2 * epsilon)
        crossed[i] = not (np.array_equal(p_plus, here) and np.array_equal(p_minus, here))
    return grad, crossed


def loss_and_pattern(theta: np.ndarray, X: np.ndarray, Y: np.ndarray, spec: MLPSpec,
                     l2: float) -> tuple[float, np.ndarray]:
    """The objective computed afresh (not by loss_and_grad) and, for an activation with kinks,
    the derivative at every hidden unit (B, units): a step that changes it has crossed a kink,
    where a finite difference is no derivative. A smooth activation has no pattern (B, 0)."""
    activations = layer_activations(unpack(theta, spec.sizes), X, spec.act)
    weights = theta * l2_mask(spec)  # (P,)
    loss = cross_entropy(log_softmax(activations[-1]), Y) + l2 * float(np.vdot(weights, weights))
    if not spec.act.kinks:
        return loss, np.zeros((len(X), 0))
    return loss, np.hstack([spec.act.derivative(a) for a in activations[1:-1]])  # (B, units)


@dataclass(frozen=True)
class GradcheckResult:
    check_grad: float  # scipy.optimize.check_grad: ||forward-difference grad - grad||
    relative_error: float  # central differences over the parameters whose steps cross no kink
    max_layer_relative_error: float  # the same, per layer
    layer_relative_errors: tuple[float, ...]
    num_params: int
    kinks: int  # parameters whose +-epsilon step crosses a kink: left out of the errors above
    relative_error_with_kinks: float  # over all parameters


def check_gradient(theta: np.ndarray, X: np.ndarray, Y: np.ndarray, spec: MLPSpec, l2: float,
                   epsilon: float = 1e-6) -> GradcheckResult:
    """Compare the analytic gradient with numerical ones, in float64."""
    theta = np.asarray(theta, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)

    def f(t):
        return loss_and_grad(t, X, Y, spec, l2)[0]

    def g(t):
        return loss_and_grad(t, X, Y, spec, l2)[1]

    analytic = g(theta)
    numeric, crossed = central_difference(
        lambda t: loss_and_pattern(t, X, Y, spec, l2), theta, epsilon)
    smooth = ~crossed  # (P,)
    per_layer = tuple(
        relative_error(numeric[w.start:b.stop][smooth[w.start:b.stop]],
                       analytic[w.start:b.stop][smooth[w.start:b.stop]])
        for w, b in layer_slices(spec.sizes)
    )
    return GradcheckResult(
        check_grad=float(scipy.optimize.check_grad(f, g, theta)),
        relative_error=relative_error(numeric[smooth], analytic[smooth]),
        max_layer_relative_error=max(per_layer),
        layer_relative_errors=per_layer,
        num_params=theta.size,
        kinks=int(crossed.sum()),
        relative_error_with_kinks=relative_error(numeric, analytic),
    )
