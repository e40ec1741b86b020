"""Minibatch SGD (fmnist_mlp/sgd/minibatch.py): its steps against SGD written out by hand, the
weight trajectory it records, the history of each epoch's figures, float32 arithmetic, a
divergence named by its epoch, step and learning rate."""

import numpy as np
import pytest
from conftest import net, problem

from fmnist_mlp.core.errors import DivergenceError
from fmnist_mlp.numpy_mlp.mlp import evaluate, init_params, loss_and_grad
from fmnist_mlp.sgd.minibatch import sgd


def toy(rng, n=60):
    X = rng.normal(size=(n, 6))  # (N, 6)
    Y = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]  # (N, 3)
    return X, Y


def run(rng, **kw):
    X, Y = toy(rng)
    sizes = (6, 5, 3)
    args = dict(epochs=3, batch_size=16, learning_rate=0.1, l2=1e-3, progress=False)
    args.update(kw)
    theta0 = init_params(net(sizes), np.random.default_rng(0))
    return theta0, sgd(theta0, X, Y, net(sizes), rng=np.random.default_rng(7), val=(X, Y), **args)


def test_trajectory_is_initial_then_every_epoch(rng):
    theta0, result = run(rng)
    assert result.trajectory.shape == (4, theta0.size)
    np.testing.assert_array_equal(result.trajectory[0], theta0)
    np.testing.assert_array_equal(result.trajectory[-1], result.theta)
    assert list(result.trajectory_step) == [0, 4, 8, 12]
    assert len(result.history.rows()) == 3


def test_snapshot_every_k_steps(rng):
    _, result = run(rng, snapshot_every=3)
    assert list(result.trajectory_step) == [0, 3, 4, 6, 8, 9, 12]


def test_one_epoch_is_plain_sgd_over_the_shuffled_batches(rng):
    X, Y = toy(rng)
    sizes = (6, 5, 3)
    theta = init_params(net(sizes), np.random.default_rng(0))
    result = sgd(theta, X, Y, net(sizes), epochs=1, batch_size=16, learning_rate=0.1, l2=1e-3,
                 rng=np.random.default_rng(7), progress=False)
    order = np.random.default_rng(7).permutation(len(X))
    for first in range(0, len(X), 16):
        theta = theta - 0.1 * loss_and_grad(theta, X[order[first:first + 16]],
                                            Y[order[first:first + 16]], net(sizes), 1e-3)[1]
    np.testing.assert_allclose(result.theta, theta, rtol=0, atol=1e-14)


def test_same_seeds_same_run(rng):
    X, Y = toy(rng)
    a = run(np.random.default_rng(3))[1]
    b = run(np.random.default_rng(3))[1]
    np.testing.assert_array_equal(a.trajectory, b.trajectory)


def test_training_reduces_loss(rng):
    _, result = run(rng, epochs=20)
    assert result.history.train_loss[-1] < 0.6 * result.history.train_loss[0]


@pytest.mark.filterwarnings("error")
def test_divergence_on_the_last_step_is_caught(rng):
    """One epoch of one step: the loss before it is finite, the weights after it are not."""
    with pytest.raises(DivergenceError, match=r"epoch 1, step 1 "):
        run(rng, learning_rate=1e300, epochs=1, batch_size=100_000)


@pytest.mark.filterwarnings("error")  # the error is the one message: no numpy warnings first
def test_divergence_is_a_clear_error(rng):
    with pytest.raises(DivergenceError, match=r"learning_rate=1e\+300"):
        run(rng, learning_rate=1e300)


def hand_sgd(theta, X, Y, spec, *, epochs, batch_size, lr, l2, seed):
    """SGD written out step by step: a fresh permutation every epoch; theta after every step."""
    rng, thetas = np.random.default_rng(seed), [theta.copy()]
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for first in range(0, len(X), batch_size):
            batch = order[first:first + batch_size]
            thetas.append(thetas[-1] - lr * loss_and_grad(thetas[-1], X[batch], Y[batch], spec,
                                                           l2)[1])
    return thetas


def test_the_trajectory_is_the_weights_at_each_recorded_step(rng):
    """Every row of the trajectory against an independent rerun stopped at its step (3 epochs of
    3 steps, a snapshot every 2 steps): a snapshot stored without a copy, or a shuffle only in
    the first epoch, changes rows between the first and the last."""
    spec = net((5, 4, 3))
    X, Y = problem(rng)
    theta = init_params(spec, rng)
    result = sgd(theta, X, Y, spec, epochs=3, batch_size=8, learning_rate=0.1, l2=1e-3,
                 rng=np.random.default_rng(7), snapshot_every=2, progress=False)
    assert result.trajectory_step.tolist() == [0, 2, 3, 4, 6, 8, 9]
    thetas = hand_sgd(theta, X, Y, spec, epochs=3, batch_size=8, lr=0.1, l2=1e-3, seed=7)
    for row, step in zip(result.trajectory, result.trajectory_step):
        np.testing.assert_allclose(row, thetas[step], rtol=1e-12, atol=1e-14)
    assert len({row.tobytes() for row in result.trajectory}) == 7  # no two rows alike


def test_two_epochs_of_softmax_regression_by_hand():
    """No hidden layer: the gradient of the mean cross-entropy plus l2 ||W||^2 is
    X^T (softmax(XW + b) - Y) / N + 2 l2 W and 1^T (softmax - Y) / N; two full-batch steps."""
    spec = net((2, 2))
    X = np.array([[1.0, 2.0], [0.5, -1.0], [-1.5, 0.5]])  # (3, 2)
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # (3, 2)
    W, b = np.array([[0.1, -0.2], [0.3, 0.0]]), np.array([0.05, -0.05])
    theta = np.concatenate([W.ravel(), b])
    lr, l2 = 0.5, 0.01
    for _ in range(2):
        logits = X @ W + b
        P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        W, b = W - lr * (X.T @ (P - Y) / 3 + 2 * l2 * W), b - lr * (P - Y).mean(axis=0)
    result = sgd(theta, X, Y, spec, epochs=2, batch_size=3, learning_rate=lr, l2=l2,
                 rng=np.random.default_rng(0), progress=False)
    np.testing.assert_allclose(result.theta, np.concatenate([W.ravel(), b]), rtol=1e-13)


def test_the_history_holds_each_epochs_figures_and_float32_stays_float32(rng):
    """Each history row is evaluate() at the trajectory's epoch snapshot; with float32 data the
    arithmetic is float32: the first step is theta - lr * grad in float32, bit for bit."""
    spec = net((5, 4, 3))
    X, Y = problem(rng, n=24)
    Xv, Yv = problem(rng, n=10)
    theta = init_params(spec, rng)
    res = sgd(theta, X, Y, spec, epochs=2, batch_size=8, learning_rate=0.1, l2=0.0,
              rng=np.random.default_rng(0), val=(Xv, Yv), progress=False)
    assert [r["epoch"] for r in res.history.rows()] == [1, 2]
    for row, snapshot in zip(res.history.rows(), res.trajectory[1:]):
        assert (row["train_loss"], row["train_accuracy"]) == evaluate(snapshot, X, Y, spec)
        assert (row["val_loss"], row["val_accuracy"]) == evaluate(snapshot, Xv, Yv, spec)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    one = sgd(theta, X32, Y, spec, epochs=1, batch_size=24, learning_rate=0.1, l2=0.0,
              rng=np.random.default_rng(0), progress=False)
    order = np.random.default_rng(0).permutation(24)
    _, grad = loss_and_grad(theta.astype(np.float32), X32[order], Y32[order], spec, 0.0)
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(one.theta, theta.astype(np.float32) - np.float32(0.1) * grad)


def test_float32_data_are_validated_in_float32(rng):
    """With float32 data and labels the history's figures are float32 arithmetic, as training."""
    spec = net((5, 4, 3))
    X, Y = (a.astype(np.float32) for a in problem(rng, n=24))
    Xv, Yv = (a.astype(np.float32) for a in problem(rng, n=40))
    res = sgd(init_params(spec, rng), X, Y, spec, epochs=1, batch_size=8, learning_rate=0.1,
              l2=0.0, rng=np.random.default_rng(0), val=(Xv, Yv), progress=False)
    theta = res.theta.astype(np.float32)  # float32 values, returned in float64
    assert (res.history.val_loss[0], res.history.val_accuracy[0]) == evaluate(theta, Xv, Yv, spec)
    assert (res.history.train_loss[0], res.history.train_accuracy[0]) == evaluate(theta, X, Y,
                                                                                  spec)


def test_divergence_names_the_epoch_the_step_and_the_learning_rate(rng):
    spec = net((5, 4, 3))
    X, Y = problem(rng, n=24)
    theta = init_params(spec, rng)
    with pytest.raises(DivergenceError, match=r"at epoch 1, step 2 \(learning_rate=1e\+300\)"):
        sgd(theta, X, Y, spec, epochs=1, batch_size=12, learning_rate=1e300, l2=0.0,
            rng=np.random.default_rng(0), progress=False)
    with pytest.raises(DivergenceError, match=r"at epoch 1, step 1 \(learning_rate=1e\+300\)"):
        sgd(theta, X, Y, spec, epochs=1, batch_size=24, learning_rate=1e300, l2=0.0,
            rng=np.random.default_rng(0), progress=False)  # the one step's update diverges
