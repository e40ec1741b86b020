import numpy as np
import pytest

from fmnist_mlp.core.errors import DataError
from fmnist_mlp.dataset.idx import parse_idx, to_idx


def test_images_and_labels_round_trip(rng):
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 4], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(to_idx(images)), images)
    np.testing.assert_array_equal(parse_idx(to_idx(labels)), labels)


def test_header_is_big_endian():
    data = to_idx(np.zeros((2, 3, 4), dtype=np.uint8))
    assert data[:16] == bytes.fromhex("00000803" "00000002" "00000003" "00000004")


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00\x08\x04" + bytes(12), "bad IDX magic 0x00000804"),
    (b"\x00\x00\x08", "truncated IDX header"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x01", "truncated IDX header"),
])
def test_bad_headers_are_named(data, message):
    with pytest.raises(DataError, match=message) as info:
        parse_idx(data, "some-file")
    assert str(info.value).startswith("some-file:")


def test_truncated_payload():
    data = to_idx(np.zeros((2, 28, 28), dtype=np.uint8))[:-1]
    with pytest.raises(DataError, match=r"payload has 1567 bytes, header \(2, 28, 28\) says 1568"):
        parse_idx(data, "x")


def test_wrong_count_in_header():
    data = bytearray(to_idx(np.zeros(5, dtype=np.uint8)))
    data[7] = 6  # header says 6 labels, payload has 5
    with pytest.raises(DataError, match="says 6"):
        parse_idx(bytes(data), "labels")
