"""Fetch the four Fashion-MNIST IDX files and verify the SHA-256 of their decompressed bytes.

Sources are tried in order: a user directory, the Debian package's directory, the official mirror.
The files land in the output directory only when all four are verified: they are written to a
sibling temporary directory which is renamed into place at the end.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from fmnist_mlp.errors import DataError

# SHA-256 and size of the decompressed files (shared/reference/fashion-mnist.sha256).
EXPECTED = {
    "train-images-idx3-ubyte": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47_040_016),
    "train-labels-idx1-ubyte": (
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60_008),
    "t10k-images-idx3-ubyte": (
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7_840_016),
    "t10k-labels-idx1-ubyte": (
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10_008),
}


@dataclass(frozen=True)
class Source:
    """Where one file was found: a local path (``.gz`` or plain) or a URL of a ``.gz``."""

    location: str

    def read(self, timeout: float) -> bytes:
        """The decompressed bytes; DataError naming the location if it cannot be read."""
        try:
            if self.location.startswith(("http://", "https://")):
                with urllib.request.urlopen(self.location, timeout=timeout) as response:
                    raw = response.read()
            else:
                raw = Path(self.location).read_bytes()
            return gzip.decompress(raw) if self.location.endswith(".gz") else raw
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{self.location}: cannot read ({e})") from None


def local_source(directory: Path, name: str) -> Source | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return Source(str(candidate))
    return None


def find_source(name: str, dirs: list[Path], mirror_url: str | None) -> Source:
    """The first place that has ``name``: each of ``dirs`` in order, else the mirror."""
    for directory in dirs:
        found = local_source(directory, name)
        if found is not None:
            return found
    if mirror_url:
        return Source(f"{mirror_url.rstrip('/')}/{name}.gz")
    raise DataError(f"{name}: not found in {', '.join(map(str, dirs))} and no mirror set")


def verify(name: str, data: bytes, origin: str) -> None:
    """Raise DataError unless ``data`` has the expected size and SHA-256 of ``name``."""
    sha, size = EXPECTED[name]
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise DataError(
            f"{name} (from {origin}): SHA-256 mismatch: expected {sha}, got {actual} "
            f"({len(data)} bytes, expected {size})"
        )


def fetch_all(out_dir: Path, dirs: list[Path], mirror_url: str | None, timeout: float) -> dict:
    """Write the four verified IDX files into ``out_dir``; return {name: origin}.

    On any error nothing is left at ``out_dir`` (the work happens in a temporary sibling).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    origins = {}
    try:
        for name in EXPECTED:
            source = find_source(name, dirs, mirror_url)
            print(f"fetch: {name} <- {source.location}", file=sys.stderr)
            data = source.read(timeout)
            verify(name, data, source.location)
            (staging / name).write_bytes(data)
            origins[name] = source.location
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return origins
