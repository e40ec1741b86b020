"""The network's spec (fmnist_mlp/network/spec.py): the activations' table and their
derivatives, an unknown activation named in one line, relu's buffer, the spec as JSON."""

import json

import numpy as np
import pytest
from conftest import ACTIVATION_NAMES, net


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


def test_relu_is_right_on_its_first_call_and_for_a_bigger_array():
    """A relu's zeros buffer is made on its first call and grown for a bigger array (a fresh
    process starts with none); the network's relu is one such."""
    from fmnist_mlp.network.spec import Relu

    assert isinstance(net((2, 2, 2)).act.apply, Relu)
    relu = Relu()
    for z in (np.array([-1.0, 2.0, -0.5]), np.array([[3.0, -4.0], [-0.0, 0.5]]),
              np.array([-2.0, 1.0, -3.0, 4.0, 5.0], np.float32)):
        expected = np.maximum(z, 0)
        out = relu(z.copy())
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == z.dtype


def test_a_spec_is_written_with_its_keys_sorted():
    """The model files hold the spec as JSON; sorted keys keep their bytes whatever the field
    order."""
    text = net((5, 4, 3)).to_json()
    assert list(json.loads(text)) == sorted(json.loads(text))
