"""The scratch MLP against an independent implementation: Keras, same weights and batches."""

import numpy as np
import pytest

from fmnist_mlp.mlp import init_params, loss_and_grad

keras_models = pytest.importorskip("fmnist_mlp.keras_models")


@pytest.fixture
def float64():
    previous = keras_models.keras.config.floatx()
    keras_models.keras.config.set_floatx("float64")
    yield
    keras_models.keras.config.set_floatx(previous)


@pytest.mark.parametrize("sizes", [(784, 10, 10, 10, 10), (20, 7, 13, 5)])
def test_three_sgd_steps_agree_with_keras(rng, sizes, float64):
    l2, lr, batch = 1e-3, 0.05, 16
    theta = init_params(sizes, rng)
    X = rng.uniform(-0.5, 0.5, size=(3 * batch, sizes[0]))  # (3B, n_in)
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 3 * batch)]  # (3B, C)

    model = keras_models.build_mlp(sizes, l2=l2, learning_rate=lr, regularize_output=True)
    keras_models.set_flat_weights(model, theta, sizes)
    np.testing.assert_array_equal(keras_models.get_flat_weights(model), theta)

    for step in range(3):
        xb, yb = X[step * batch:(step + 1) * batch], Y[step * batch:(step + 1) * batch]
        keras_loss = float(model.train_on_batch(xb, yb)[0])
        loss, grad = loss_and_grad(theta, xb, yb, sizes, l2)
        assert loss == pytest.approx(keras_loss, abs=1e-6)
        theta = theta - lr * grad

    np.testing.assert_allclose(keras_models.get_flat_weights(model), theta, rtol=0, atol=1e-5)
    assert np.abs(keras_models.get_flat_weights(model) - theta).max() < 1e-10
