"""The scratch MLP against an independent implementation: Keras, with the same spec, the same
weights and the same batches, for every activation."""

import numpy as np
import pytest
from conftest import ACTIVATION_NAMES, net

from fmnist_mlp.numpy_mlp.mlp import init_params, loss_and_grad, unpack

keras_models = pytest.importorskip("fmnist_mlp.keras_search.models")


def set_flat_weights(model, theta: np.ndarray, sizes: tuple[int, ...]) -> None:
    """Load the flat vector theta (P,) of ``mlp`` into the Keras model's Dense layers."""
    for layer, (W, b) in zip(model.layers, unpack(theta, sizes), strict=True):
        layer.set_weights([W, b])


def get_flat_weights(model) -> np.ndarray:
    """The model's Dense weights as one flat vector (P,), in ``mlp``'s layout."""
    return np.concatenate([np.concatenate([w.ravel() for w in layer.get_weights()])
                           for layer in model.layers])


def three_sgd_steps(rng, spec, dtype):
    """Keras' and the scratch MLP's losses per step and weights after three SGD steps."""
    l2, lr, batch = 2.0 ** -10, 2.0 ** -4, 16  # exact in float32: Keras keeps lr a float32
    theta = init_params(spec, rng).astype(dtype).astype(np.float64)  # same start for both
    theta0 = theta
    X = rng.uniform(-0.5, 0.5, size=(3 * batch, spec.n_in))  # (3B, n_in)
    Y = np.eye(spec.n_out)[rng.integers(0, spec.n_out, 3 * batch)]  # (3B, C)
    model = keras_models.build_mlp(spec, l2=l2, learning_rate=lr)
    set_flat_weights(model, theta, spec.sizes)
    np.testing.assert_array_equal(get_flat_weights(model), theta0.astype(dtype))
    losses = []
    for step in range(3):
        xb, yb = X[step * batch:(step + 1) * batch], Y[step * batch:(step + 1) * batch]
        keras_loss = float(model.train_on_batch(xb.astype(dtype), yb.astype(dtype))[0])
        loss, grad = loss_and_grad(theta, xb, yb, spec, l2)
        losses.append((keras_loss, loss))
        theta = theta - lr * grad
    assert np.abs(theta - theta0).max() > 1e-3  # the three steps did move the weights
    return losses, get_flat_weights(model).astype(np.float64), theta


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("sizes", [(784, 10, 10, 10, 10), (20, 7, 13, 5)])
def test_three_sgd_steps_agree_with_keras_in_float32(rng, sizes, activation):
    """Keras computes in float32 (as the search does), the scratch MLP here in float64."""
    losses, keras_theta, theta = three_sgd_steps(rng, net(sizes, activation), np.float32)
    for keras_loss, loss in losses:
        assert loss == pytest.approx(keras_loss, abs=1e-5)
    np.testing.assert_allclose(keras_theta, theta, rtol=0, atol=1e-5)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_three_sgd_steps_agree_with_keras_to_1e_10_in_float64(rng, activation):
    """Both in float64: what is left is rounding, far below any modelling difference."""
    keras = keras_models.keras
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")  # the layers' variables and arithmetic
    try:
        losses, keras_theta, theta = three_sgd_steps(rng, net((784, 10, 10, 10, 10), activation),
                                                     np.float64)
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
    for keras_loss, loss in losses:
        assert loss == pytest.approx(keras_loss, abs=1e-10)
    np.testing.assert_allclose(keras_theta, theta, rtol=0, atol=1e-10)


def test_the_keras_twin_carries_its_spec_and_a_wrong_one_is_named(tmp_path):
    from fmnist_mlp.core.errors import DataError

    spec = net((20, 7, 5), "tanh", l2_output=False)
    model = keras_models.build_mlp(spec, l2=1e-3, learning_rate=0.05)
    keras_models.save_model(model, tmp_path / "m.keras")
    assert keras_models.model_spec(keras_models.keras.models.load_model(tmp_path / "m.keras"),
                                   "relu") == spec
    keras_models.load_model(tmp_path / "m.keras", spec)
    with pytest.raises(DataError, match=r"m.keras: holds a 20-7-5 tanh, L2 on the hidden kernels "
                                        r"network, expected 20-7-5 relu, L2 on the hidden "
                                        r"kernels"):
        keras_models.load_model(tmp_path / "m.keras", net((20, 7, 5), "relu", l2_output=False))
