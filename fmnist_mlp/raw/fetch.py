"""Fetch the four Fashion-MNIST IDX files and verify the SHA-256 of their decompressed bytes.

Sources: a user directory (``fetch.source_dir``: then it must hold all four), else the Debian
package's directory where it has the file, else the official mirror. The files land in the output
directory only when all four are verified: they are written to a sibling temporary directory which
is renamed into place at the end; leftovers of a fetch that was killed are removed by the next.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from fmnist_mlp.core.errors import DataError
from fmnist_mlp.core.params import Section


class FetchConfig(Section):
    SECTION = "fetch"
    source_dir: str | None
    package_dir: str
    mirror_url: str


DOWNLOAD_TIMEOUT = 300.0  # seconds one file's whole download may take: not a param (no bit)

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

    note: str = ""  # what else was tried, for the error message

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    def read(self, timeout: float) -> bytes:
        """The decompressed bytes; DataError naming the location if it cannot be read, or if a
        download takes more than ``timeout`` seconds in all."""
        try:
            raw = download(self.location, timeout) if self.is_url else \
                Path(self.location).read_bytes()
            return gzip.decompress(raw) if self.location.endswith(".gz") else raw
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{self.location}: cannot read ({e}){self.note}") from None


def download(url: str, timeout: float) -> bytes:
    """The body at ``url``, within ``timeout`` seconds for the whole transfer (a server that
    trickles a byte at a time cannot hold it up for longer)."""
    deadline = time.monotonic() + timeout
    buffer = io.BytesIO()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        while chunk := response.read1(1 << 16):
            buffer.write(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError(f"download not finished within {timeout:g} s")
    return buffer.getvalue()


def local_source(directory: Path, name: str) -> Source | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return Source(str(candidate))
    return None


def find_source(name: str, source_dir: Path | None, package_dir: Path | None,
                mirror_url: str | None) -> Source:
    """``source_dir`` when set (it must have the file), else ``package_dir`` if it has the file,
    else the mirror."""
    if source_dir is not None:
        if not source_dir.is_dir():
            raise DataError(f"fetch.source_dir: {source_dir} is not a directory")
        found = local_source(source_dir, name)
        if found is None:
            raise DataError(f"fetch.source_dir: {source_dir} has no {name} or {name}.gz")
        return found
    found = package_dir and local_source(package_dir, name)
    if found:
        return found
    tried = f"; not in fetch.package_dir {package_dir} either" if package_dir else ""
    if mirror_url:
        return Source(f"{mirror_url.rstrip('/')}/{name}.gz", tried)
    raise DataError(f"{name}: no fetch.mirror_url set{tried}")


def verify(name: str, data: bytes, origin: str) -> None:
    """Raise DataError unless ``data`` has the expected size and SHA-256 of ``name``."""
    sha, size = EXPECTED[name]
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise DataError(
            f"{name} (from {origin}): SHA-256 mismatch: expected {sha}, got {actual} "
            f"({len(data)} bytes, expected {size})"
        )


def fetch_all(out_dir: Path, source_dir: Path | None, package_dir: Path | None,
              mirror_url: str | None, timeout: float = DOWNLOAD_TIMEOUT) -> dict:
    """Write the four verified IDX files into ``out_dir``; return {name: origin}.

    On any error nothing is left at ``out_dir`` (the work happens in a temporary sibling).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.parent.glob(f".{out_dir.name}-*"):  # of a fetch killed with -9
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would stay on data/raw
    origins = {}
    try:
        for name in EXPECTED:
            source = find_source(name, source_dir, package_dir, mirror_url)
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
