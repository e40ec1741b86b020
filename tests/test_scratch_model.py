"""The scratch model's files: what train_scratch writes loads back; a file of the wrong shape or a
damaged one is one clear error naming it; sizes that cannot fit in memory are refused first."""

import numpy as np
import pytest

from fmnist_mlp import scratch, stage
from fmnist_mlp.errors import ConfigError, DataError
from fmnist_mlp.mlp import init_params, num_params

SIZES = (784, 10, 10, 10, 10)


def write(model_dir, **arrays):
    model_dir.mkdir(exist_ok=True)
    np.savez(model_dir / "model.npz", **arrays)
    return model_dir


def test_a_saved_model_loads_back(tmp_path, rng):
    theta = init_params(SIZES, rng)
    loaded, sizes = scratch.load_model(write(tmp_path, theta=theta, sizes=np.array(SIZES)))
    assert sizes == SIZES and np.array_equal(loaded, theta)


BROKEN = [  # (id, arrays or raw bytes, what the one line says)
    ("theta too short", dict(theta=np.zeros(100), sizes=np.array(SIZES)),
     f"theta has shape (100,) (float64), but sizes {list(SIZES)} need ({num_params(SIZES)},) "
     f"floats"),
    ("theta of integers", dict(theta=np.zeros(num_params(SIZES), dtype=int),
                               sizes=np.array(SIZES)), "need (8180,) floats"),
    ("sizes not widths", dict(theta=np.zeros(10), sizes=np.array([784.5, 10])),
     "are not layer widths"),
    ("no sizes", dict(theta=np.zeros(10)), "not a readable scratch model (KeyError"),
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
    write(tmp_path, theta=init_params(SIZES, rng), sizes=np.array(SIZES))
    raw = bytearray((tmp_path / "model.npz").read_bytes())
    start = raw.index(b"{'descr'")
    raw[start:start + 8] = b"{'descr!"  # the .npy header inside the zip no longer parses
    (tmp_path / "model.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="model.npz: not a readable scratch model") as caught:
        scratch.load_model(tmp_path)
    assert "pickle" not in str(caught.value)


def test_a_layer_too_large_for_memory_is_refused_with_the_key(monkeypatch):
    monkeypatch.setattr(stage, "available_memory", lambda: 8 * 2**30)
    scratch.require_memory(SIZES, copies=30, rows=48_000)  # the seed's network fits easily
    with pytest.raises(ConfigError, match=r"^scratch.hidden: needs about .* GiB of memory, "
                                          r"8 GiB available"):
        scratch.require_memory((784, 1_000_000_000, 10), copies=10, rows=5)
