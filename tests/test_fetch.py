import gzip
import hashlib

import numpy as np
import pytest

from fmnist_mlp import fetch
from fmnist_mlp.errors import DataError
from fmnist_mlp.idx import to_idx


@pytest.fixture
def fake_dataset(tmp_path, monkeypatch, rng):
    """Four small valid IDX files (gzipped) and EXPECTED patched to their hashes."""
    src = tmp_path / "src"
    src.mkdir()
    expected = {}
    for name in fetch.EXPECTED:
        n = 20 if name.startswith("train") else 10
        shape = (n, 28, 28) if "images" in name else (n,)
        data = to_idx(rng.integers(0, 10, size=shape, dtype=np.uint8))
        (src / f"{name}.gz").write_bytes(gzip.compress(data))
        expected[name] = (hashlib.sha256(data).hexdigest(), len(data))
    monkeypatch.setattr(fetch, "EXPECTED", expected)
    return src


def test_fetch_verifies_and_writes_all_four(tmp_path, fake_dataset):
    out = tmp_path / "raw"
    origins = fetch.fetch_all(out, [tmp_path / "missing", fake_dataset], None, 1.0)
    assert sorted(p.name for p in out.iterdir()) == sorted(fetch.EXPECTED)
    assert all(o.startswith(str(fake_dataset)) for o in origins.values())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_plain_files_are_found_before_gz(tmp_path, fake_dataset):
    name = "t10k-labels-idx1-ubyte"
    (fake_dataset / name).write_bytes(gzip.decompress((fake_dataset / f"{name}.gz").read_bytes()))
    origins = fetch.fetch_all(tmp_path / "raw", [fake_dataset], None, 1.0)
    assert origins[name] == str(fake_dataset / name)


def test_mismatching_file_names_file_and_both_hashes_and_leaves_nothing(tmp_path, fake_dataset):
    name = "train-labels-idx1-ubyte"
    bad = to_idx(np.ones(20, dtype=np.uint8))
    (fake_dataset / f"{name}.gz").write_bytes(gzip.compress(bad))
    out = tmp_path / "raw"
    with pytest.raises(DataError) as info:
        fetch.fetch_all(out, [fake_dataset], None, 1.0)
    message = str(info.value)
    assert name in message
    assert fetch.EXPECTED[name][0] in message
    assert hashlib.sha256(bad).hexdigest() in message
    assert not out.exists()
    assert list(tmp_path.glob(".raw-*")) == []


def test_corrupt_gzip_is_a_clear_error(tmp_path, fake_dataset):
    path = fake_dataset / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: cannot read"):
        fetch.fetch_all(tmp_path / "raw", [fake_dataset], None, 1.0)
    assert not (tmp_path / "raw").exists()


def test_failure_keeps_a_previous_good_output_untouched(tmp_path, fake_dataset):
    out = tmp_path / "raw"
    fetch.fetch_all(out, [fake_dataset], None, 1.0)
    (fake_dataset / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: not found"):
        fetch.fetch_all(out, [fake_dataset], None, 1.0)
    assert len(list(out.iterdir())) == 4


def test_unreachable_mirror_names_the_url(tmp_path, fake_dataset):
    (fake_dataset / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"http://127\.0\.0\.1:9/train-images-idx3-ubyte\.gz"):
        fetch.fetch_all(tmp_path / "raw", [fake_dataset], "http://127.0.0.1:9", 1.0)
