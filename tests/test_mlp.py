import numpy as np
import pytest
from conftest import ACTIVATION_NAMES, net

from fmnist_mlp.gradcheck.check import check_gradient, relative_error
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


def batch(rng, sizes, n=6):
    X = rng.normal(size=(n, sizes[0]))  # (B, n_in)
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]  # (B, C)
    return X, Y


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
    X, Y = batch(rng, sizes)
    result = check_gradient(theta, X, Y, net(sizes, activation), l2)
    assert result.relative_error < 1e-7, result
    assert result.max_layer_relative_error < 1e-6, result
    assert result.check_grad < 1e-5, result


def test_gradient_check_catches_a_wrong_gradient(rng, monkeypatch):
    import fmnist_mlp.gradcheck.check as gc

    sizes = (6, 5, 3)
    theta = init_params(net(sizes), rng)
    X, Y = batch(rng, sizes)
    right = gc.loss_and_grad

    def missing_l2(t, X, Y, sizes, l2):
        loss, _ = right(t, X, Y, sizes, l2)
        return loss, right(t, X, Y, sizes, 0.0)[1]

    monkeypatch.setattr(gc, "loss_and_grad", missing_l2)
    assert gc.check_gradient(theta, X, Y, net(sizes), l2=0.5).relative_error > 1e-3


def test_l2_applies_to_weights_not_biases(rng):
    sizes = (4, 3, 2)
    theta = rng.normal(size=num_params(sizes))
    X, Y = batch(rng, sizes)
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
    X, Y = batch(rng, sizes, n=5)
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


def test_relative_error():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.ones(2), -np.ones(2)) == pytest.approx(1.0)


def test_gradient_check_tells_a_kink_from_a_wrong_gradient(rng):
    """A large step crosses ReLU kinks: those coordinates are counted and left out, and what is
    left agrees; the error over all coordinates shows why they had to go."""
    sizes = (20, 16, 16, 4)
    theta = init_params(net(sizes), rng)
    X, Y = batch(rng, sizes, n=200)
    result = check_gradient(theta, X, Y, net(sizes), l2=1e-3, epsilon=1e-4)
    assert result.kinks > 0
    assert result.relative_error < 1e-7 < 1e-4 < result.relative_error_with_kinks
    assert check_gradient(theta, X, Y, net(sizes), l2=1e-3, epsilon=1e-6).kinks == 0


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_a_smooth_activation_has_no_kink_to_leave_out(rng, activation):
    sizes = (20, 16, 16, 4)
    theta = init_params(net(sizes, activation), rng)
    X, Y = batch(rng, sizes, n=200)
    result = check_gradient(theta, X, Y, net(sizes, activation), l2=1e-3, epsilon=1e-4)
    assert result.kinks == 0 and result.relative_error < 1e-7


def test_the_relu_spec_computes_the_former_hard_coded_relu_bit_for_bit(rng):
    """The committed results were made by a ReLU written into the forward and backward passes:
    np.maximum(z, 0) and the mask a > 0. The spec's relu gives the same bits, in float32 (SGD)
    and float64 (the gradient check, the evaluation)."""
    sizes = (30, 12, 9, 5)
    for dtype in (np.float32, np.float64):
        theta = init_params(net(sizes), rng).astype(dtype)
        X, Y = (a.astype(dtype) for a in batch(rng, sizes, n=40))
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


def test_every_activation_of_the_table_is_tested_and_its_derivative_is_right():
    from fmnist_mlp.network.spec import ACTIVATIONS

    assert sorted(ACTIVATIONS) == sorted(ACTIVATION_NAMES)
    z = np.linspace(-4, 4, 801)
    z = z[np.abs(z) > 1e-3]  # away from relu's kink
    for act in ACTIVATIONS.values():
        h = 1e-6
        numeric = (act.apply(z + h) - act.apply(z - h)) / (2 * h)
        np.testing.assert_allclose(act.derivative(act.apply(z.copy())), numeric, atol=1e-8,
                                   err_msg=act.name)


def test_an_unknown_activation_is_one_line_listing_the_known_ones():
    from conftest import section

    from fmnist_mlp.core.errors import ConfigError
    from fmnist_mlp.grid.search import SearchConfig
    from fmnist_mlp.numpy_mlp.scratch import ScratchConfig

    with pytest.raises(ConfigError, match=r"^scratch.activation: unknown activation 'gelu' "
                                          r"\(known: relu, sigmoid, tanh\)$"):
        section(ScratchConfig, activation="gelu")
    with pytest.raises(ConfigError, match=r"^search.activation: unknown activation 'swish'"):
        section(SearchConfig, activation=["relu", "swish"])
