"""The scratch MLP against an independent implementation: Keras, same weights and batches."""

import numpy as np
import pytest

from fmnist_mlp.mlp import init_params, loss_and_grad, unpack

keras_models = pytest.importorskip("fmnist_mlp.keras_models")


def set_flat_weights(model, theta: np.ndarray, sizes: tuple[int, ...]) -> None:
    """Load the flat vector theta (P,) of ``mlp`` into the Keras model's Dense layers."""
    for layer, (W, b) in zip(model.layers, unpack(theta, sizes), strict=True):
        layer.set_weights([W, b])


def get_flat_weights(model) -> np.ndarray:
    """The model's Dense weights as one flat vector (P,), in ``mlp``'s layout."""
    return np.concatenate([np.concatenate([w.ravel() for w in layer.get_weights()])
                           for layer in model.layers])


@pytest.mark.parametrize("sizes", [(784, 10, 10, 10, 10), (20, 7, 13, 5)])
def test_three_sgd_steps_agree_with_keras(rng, sizes):
    """Keras computes in float32, the scratch MLP here in float64."""
    l2, lr, batch = 1e-3, 0.05, 16
    theta0 = init_params(sizes, rng).astype(np.float32).astype(np.float64)  # same start for both
    theta = theta0
    X = rng.uniform(-0.5, 0.5, size=(3 * batch, sizes[0]))  # (3B, n_in)
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 3 * batch)]  # (3B, C)

    model = keras_models.build_mlp(sizes, l2=l2, learning_rate=lr, regularize_output=True)
    set_flat_weights(model, theta, sizes)
    np.testing.assert_array_equal(get_flat_weights(model), theta0.astype(np.float32))

    for step in range(3):
        xb, yb = X[step * batch:(step + 1) * batch], Y[step * batch:(step + 1) * batch]
        keras_loss = float(model.train_on_batch(xb, yb)[0])
        loss, grad = loss_and_grad(theta, xb, yb, sizes, l2)
        assert loss == pytest.approx(keras_loss, abs=1e-5)
        theta = theta - lr * grad

    keras_theta = get_flat_weights(model).astype(np.float64)
    assert np.abs(theta - theta0).max() > 1e-3  # the three steps did move the weights
    np.testing.assert_allclose(keras_theta, theta, rtol=0, atol=1e-5)
