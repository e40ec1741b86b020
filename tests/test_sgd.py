import numpy as np
import pytest
from conftest import net

from fmnist_mlp.core.errors import DivergenceError
from fmnist_mlp.numpy_mlp.mlp import init_params, loss_and_grad
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
