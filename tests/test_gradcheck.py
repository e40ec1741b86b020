"""The numerical gradient check (fmnist_mlp/gradcheck/check.py): the relative error, a wrong
gradient caught (as a whole and layer by layer), ReLU's kinks counted and left out, the
parameters counted."""

import numpy as np
import pytest
from conftest import net, problem

from fmnist_mlp.gradcheck import check as gradcheck
from fmnist_mlp.numpy_mlp.mlp import init_params, layer_slices, loss_and_grad


def test_relative_error():
    assert gradcheck.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert gradcheck.relative_error(np.ones(2), -np.ones(2)) == pytest.approx(1.0)


def test_gradient_check_catches_a_wrong_gradient(rng, monkeypatch):
    sizes = (6, 5, 3)
    theta = init_params(net(sizes), rng)
    X, Y = problem(rng, n=6, sizes=sizes)
    right = gradcheck.loss_and_grad

    def missing_l2(t, X, Y, sizes, l2):
        loss, _ = right(t, X, Y, sizes, l2)
        return loss, right(t, X, Y, sizes, 0.0)[1]

    monkeypatch.setattr(gradcheck, "loss_and_grad", missing_l2)
    assert gradcheck.check_gradient(theta, X, Y, net(sizes), l2=0.5).relative_error > 1e-3


def test_a_wrong_bias_gradient_is_flagged_for_its_layer_alone(rng, monkeypatch):
    """A gradient correct but for one layer's biases: that layer's error is large, the others'
    tiny (a per-layer slice that leaves the biases out would miss it)."""
    spec = net((5, 4, 3), activation="tanh")
    X, Y = problem(rng)
    theta = init_params(spec, rng)
    (_, bias0), _ = layer_slices(spec.sizes)

    def wrong(t, X, Y, spec, l2):
        loss, grad = loss_and_grad(t, X, Y, spec, l2)
        grad = grad.copy()
        grad[bias0] += 0.05  # (4,)
        return loss, grad

    monkeypatch.setattr(gradcheck, "loss_and_grad", wrong)
    result = gradcheck.check_gradient(theta, X, Y, spec, l2=1e-3)
    first, second = result.layer_relative_errors
    assert first > 1e-2 and second < 1e-7, result.layer_relative_errors


def test_gradient_check_tells_a_kink_from_a_wrong_gradient(rng):
    """A large step crosses ReLU kinks: those coordinates are counted and left out, and what is
    left agrees; the error over all coordinates shows why they had to go."""
    sizes = (20, 16, 16, 4)
    theta = init_params(net(sizes), rng)
    X, Y = problem(rng, n=200, sizes=sizes)
    result = gradcheck.check_gradient(theta, X, Y, net(sizes), l2=1e-3, epsilon=1e-4)
    assert result.kinks > 0
    assert result.relative_error < 1e-7 < 1e-4 < result.relative_error_with_kinks
    assert gradcheck.check_gradient(theta, X, Y, net(sizes), l2=1e-3, epsilon=1e-6).kinks == 0


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_a_smooth_activation_has_no_kink_to_leave_out(rng, activation):
    sizes = (20, 16, 16, 4)
    theta = init_params(net(sizes, activation), rng)
    X, Y = problem(rng, n=200, sizes=sizes)
    result = gradcheck.check_gradient(theta, X, Y, net(sizes, activation), l2=1e-3, epsilon=1e-4)
    assert result.kinks == 0 and result.relative_error < 1e-7


def test_the_gradient_check_counts_the_parameters(rng):
    spec = net((5, 4, 3))
    X, Y = problem(rng, n=6)
    result = gradcheck.check_gradient(init_params(spec, rng), X, Y, spec, l2=0.0)
    assert result.num_params == spec.num_params == 5 * 4 + 4 + 4 * 3 + 3
