"""Reading IDX files (the format of MNIST and Fashion-MNIST).

Header: big-endian uint32 magic 0x00000803 for images (then n, rows, cols) or 0x00000801 for labels
(then n), followed by the uint8 payload.
"""

from __future__ import annotations

import numpy as np

from fmnist_mlp.core.errors import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a uint8 array of shape (n,) or (n, rows, cols).

    Raises DataError naming ``name`` on a bad magic number, a short header or a payload whose
    length does not match the counts in the header.
    """
    if len(data) < 8:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic == IMAGES_MAGIC:
        header_len, ndim = 16, 3
    elif magic == LABELS_MAGIC:
        header_len, ndim = 8, 1
    else:
        raise DataError(
            f"{name}: bad IDX magic 0x{magic:08x} "
            f"(expected 0x{IMAGES_MAGIC:08x} images or 0x{LABELS_MAGIC:08x} labels)"
        )
    if len(data) < header_len:
        raise DataError(f"{name}: truncated IDX header ({len(data)} of {header_len} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header_len + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(
            f"{name}: payload has {len(data) - header_len} bytes, header {shape} says "
            f"{expected - header_len}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def to_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array of shape (n,) or (n, rows, cols) as IDX bytes (for tests and tools)."""
    array = np.asarray(array, dtype=np.uint8)
    magic = {1: LABELS_MAGIC, 3: IMAGES_MAGIC}[array.ndim]
    header = b"".join(int(v).to_bytes(4, "big") for v in (magic, *array.shape))
    return header + array.tobytes()
