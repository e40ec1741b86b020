"""The scratch model's files: what train_scratch writes loads back with the spec it carries; a
file of the wrong shape, of another network or a damaged one is one clear error naming it; sizes
that cannot fit in memory are refused first."""

import numpy as np
import pytest
from conftest import net

from fmnist_mlp.core import resources
from fmnist_mlp.core.errors import ConfigError, DataError
from fmnist_mlp.numpy_mlp import scratch
from fmnist_mlp.numpy_mlp.mlp import init_params
from fmnist_mlp.sgd.minibatch import SGDResult

SPEC = net((784, 10, 10, 10, 10))
TANH = net((784, 10, 10, 10, 10), "tanh")


def write(model_dir, **arrays):
    model_dir.mkdir(exist_ok=True)
    np.savez(model_dir / "model.npz", **arrays)
    return model_dir


def saved(model_dir, rng, spec=SPEC):
    theta = init_params(spec, rng)
    scratch.save_model(model_dir, SGDResult(theta, np.stack([theta, theta]), np.arange(2), None),
                       spec)
    return theta


def test_a_saved_model_loads_back_with_its_spec(tmp_path, rng):
    theta = saved(tmp_path, rng, TANH)
    loaded, spec = scratch.load_model(tmp_path)
    assert spec == TANH and np.array_equal(loaded, theta)
    assert scratch.load_trajectory(tmp_path, spec).shape == (2, SPEC.num_params)


def test_a_trajectory_of_another_network_is_named_with_both_specs(tmp_path, rng):
    saved(tmp_path, rng, TANH)
    model = dict(np.load(tmp_path / "model.npz"))
    saved(tmp_path / "other", rng, SPEC)
    (tmp_path / "other" / "trajectory.npz").replace(tmp_path / "trajectory.npz")
    _, spec = scratch.load_model(tmp_path)
    assert spec == TANH and model["spec"].dtype.kind == "U"
    with pytest.raises(DataError, match=r"trajectory.npz: holds a 784-10-10-10-10 relu, L2 on "
                                        r"every kernel network, expected 784-10-10-10-10 tanh, "
                                        r"L2 on every kernel"):
        scratch.load_trajectory(tmp_path, spec)


BROKEN = [  # (id, arrays or raw bytes, what the one line says)
    ("theta too short", dict(theta=np.zeros(100), spec=np.array(SPEC.to_json())),
     f"theta has shape (100,) (float64), but a {SPEC.describe()} network needs "
     f"({SPEC.num_params},) floats"),
    ("theta of integers", dict(theta=np.zeros(SPEC.num_params, dtype=int),
                               spec=np.array(SPEC.to_json())), "needs (8180,) floats"),
    ("spec not a network", dict(theta=np.zeros(10), spec=np.array('{"n_in": 3}')),
     "no valid network spec (KeyError"),
    ("unknown activation", dict(theta=np.zeros(10), spec=np.array(
        SPEC.to_json().replace("relu", "gelu"))), "unknown activation 'gelu'"),
    ("spec of numbers", dict(theta=np.zeros(10), spec=np.zeros(3)), "no valid network spec"),
    ("no spec", dict(theta=np.zeros(10)), "not a readable scratch model (KeyError"),
    ("damaged header", b"PK", "not a readable scratch model"),
]


@pytest.mark.parametrize("content, said", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_a_wrong_or_damaged_model_is_one_line_naming_the_file(tmp_path, content, said):
    if isinstance(content, bytes):
        tmp_path.joinpath("model.npz").write_bytes(content)
    else:
        write(tmp_path, **content)
    with pytest.raises(DataError) as caught:
        scratch.load_model(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'model.npz'}: ") and said in message, message
    assert "\n" not in message and "pickle" not in message


def test_a_damaged_array_header_is_not_called_pickled_data(tmp_path, rng):
    write(tmp_path, theta=init_params(SPEC, rng), spec=np.array(SPEC.to_json()))
    raw = bytearray((tmp_path / "model.npz").read_bytes())
    start = raw.index(b"{'descr'")
    raw[start:start + 8] = b"{'descr!"  # the .npy header inside the zip no longer parses
    (tmp_path / "model.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="model.npz: not a readable scratch model") as caught:
        scratch.load_model(tmp_path)
    assert "pickle" not in str(caught.value)


def test_a_layer_too_large_for_memory_is_refused_with_the_key(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 8 * 2**30)
    scratch.require_memory(SPEC, copies=30, rows=48_000)  # the seed's network fits easily
    with pytest.raises(ConfigError, match=r"^scratch.hidden: needs about .* GiB of memory, "
                                          r"8 GiB available"):
        scratch.require_memory(net((784, 1_000_000_000, 10)), copies=10, rows=5)
