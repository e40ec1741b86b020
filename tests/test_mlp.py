"""The numpy MLP (fmnist_mlp/numpy_mlp/mlp.py): the flat parameters and their layers, the loss
(mean cross-entropy plus L2 on the weights), its gradient against central differences and
against the former hard-coded ReLU, the accuracy, huge logits."""

import numpy as np
import pytest
from conftest import ACTIVATION_NAMES, net, problem

from fmnist_mlp.gradcheck.check import check_gradient
from fmnist_mlp.numpy_mlp.mlp import (
    evaluate,
    init_params,
    log_softmax,
    loss_and_grad,
    num_params,
    pack,
    unpack,
)

ARCHITECTURES = [(7, 5, 3), (9, 11, 7, 4), (6, 13, 3, 9, 5), (8, 3, 7, 5, 9, 10)]


def test_unpack_gives_views_and_pack_round_trips(rng):
    sizes = (5, 4, 3, 2)
    theta = rng.normal(size=num_params(sizes))
    layers = unpack(theta, sizes)
    assert [W.shape for W, _ in layers] == [(5, 4), (4, 3), (3, 2)]
    assert all(np.shares_memory(W, theta) and np.shares_memory(b, theta) for W, b in layers)
    layers[1][0][2, 1] = 42.0
    assert 42.0 in theta
    np.testing.assert_array_equal(pack(unpack(theta, sizes)), theta)


def test_unpack_rejects_wrong_length(rng):
    with pytest.raises(ValueError, match="sizes"):
        unpack(np.zeros(10), (5, 4, 3))


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_gradient_matches_central_differences(rng, sizes, l2, activation):
    theta = init_params(net(sizes, activation), rng)
    X, Y = problem(rng, n=6, sizes=sizes)
    result = check_gradient(theta, X, Y, net(sizes, activation), l2)
    assert result.relative_error < 1e-7, result
    assert result.max_layer_relative_error < 1e-6, result
    assert result.check_grad < 1e-5, result


def test_l2_applies_to_weights_not_biases(rng):
    sizes = (4, 3, 2)
    theta = rng.normal(size=num_params(sizes))
    X, Y = problem(rng, n=6, sizes=sizes)
    loss0, grad0 = loss_and_grad(theta, X, Y, net(sizes), 0.0)
    loss1, grad1 = loss_and_grad(theta, X, Y, net(sizes), 0.1)
    weights = sum(float((W ** 2).sum()) for W, _ in unpack(theta, sizes))
    assert loss1 - loss0 == pytest.approx(0.1 * weights)
    diff = unpack(grad1 - grad0, sizes)
    for (W, _), (dW, db) in zip(unpack(theta, sizes), diff):
        np.testing.assert_allclose(dW, 0.2 * W)
        np.testing.assert_array_equal(db, 0.0)


def test_loss_is_mean_cross_entropy_of_softmax(rng):
    sizes = (4, 3)
    theta = rng.normal(size=num_params(sizes))
    X, Y = problem(rng, n=5, sizes=sizes)
    W, b = unpack(theta, sizes)[0]
    p = np.exp(X @ W + b)
    p /= p.sum(axis=1, keepdims=True)
    expected = -np.mean(np.log((p * Y).sum(axis=1)))
    assert loss_and_grad(theta, X, Y, net(sizes))[0] == pytest.approx(expected, rel=1e-12)


def test_log_softmax_is_finite_for_huge_logits():
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]])
    out = log_softmax(logits)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], [0.0, -2000.0, -1000.0])
    np.testing.assert_allclose(np.exp(out[1]), 1 / 3)


def test_loss_and_gradient_finite_for_huge_logits():
    sizes = (2, 3)
    theta = pack([(np.array([[1000.0, -1000.0, 0.0], [0.0, 0.0, 0.0]]), np.zeros(3))])
    X = np.array([[1.0, 0.0]])
    loss, grad = loss_and_grad(theta, X, np.array([[0.0, 1.0, 0.0]]), net(sizes))
    assert loss == pytest.approx(2000.0)
    assert np.all(np.isfinite(grad))


def test_evaluate_reports_accuracy(rng):
    sizes = (3, 2)
    theta = pack([(np.array([[1.0, -1.0], [0.0, 0.0], [0.0, 0.0]]), np.zeros(2))])
    X = np.array([[1.0, 0, 0], [-1.0, 0, 0], [2.0, 0, 0], [-3.0, 0, 0]])
    Y = np.eye(2)[[0, 1, 1, 1]]
    _, accuracy = evaluate(theta, X, Y, net(sizes))
    assert accuracy == 0.75


def test_the_relu_spec_computes_the_former_hard_coded_relu_bit_for_bit(rng):
    """The committed results were made by a ReLU written into the forward and backward passes:
    np.maximum(z, 0) and the mask a > 0. The spec's relu gives the same bits, in float32 (SGD)
    and float64 (the gradient check, the evaluation)."""
    sizes = (30, 12, 9, 5)
    for dtype in (np.float32, np.float64):
        theta = init_params(net(sizes), rng).astype(dtype)
        X, Y = (a.astype(dtype) for a in problem(rng, n=40, sizes=sizes))
        layers = unpack(theta, sizes)
        acts = [X]
        for W, b in layers[:-1]:
            acts.append(np.maximum(acts[-1] @ W + b, 0))
        logits = acts[-1] @ layers[-1][0] + layers[-1][1]
        B = len(X)
        delta = np.exp(logits - logits.max(axis=1, keepdims=True))
        delta /= delta.sum(axis=1, keepdims=True)
        delta -= Y
        delta /= B
        grads = []
        for layer in range(len(layers) - 1, -1, -1):
            grads = [np.concatenate([(acts[layer].T @ delta).ravel(), delta.sum(axis=0)])] + grads
            if layer > 0:
                delta = delta @ layers[layer][0].T
                delta *= acts[layer] > 0
        _, grad = loss_and_grad(theta, X, Y, net(sizes), 0.0)
        np.testing.assert_array_equal(grad, np.concatenate(grads))
