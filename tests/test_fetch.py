import gzip
import hashlib
import http.server
import os
import stat
import threading
import time

import numpy as np
import pytest

from fmnist_mlp.core.errors import DataError
from fmnist_mlp.dataset.idx import to_idx
from fmnist_mlp.raw import fetch


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
    origins = fetch.fetch_all(out, None, fake_dataset, None, 1.0)
    assert sorted(p.name for p in out.iterdir()) == sorted(fetch.EXPECTED)
    assert all(o.startswith(str(fake_dataset)) for o in origins.values())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_plain_files_are_found_before_gz(tmp_path, fake_dataset):
    name = "t10k-labels-idx1-ubyte"
    (fake_dataset / name).write_bytes(gzip.decompress((fake_dataset / f"{name}.gz").read_bytes()))
    origins = fetch.fetch_all(tmp_path / "raw", fake_dataset, None, None, 1.0)
    assert origins[name] == str(fake_dataset / name)


def test_mismatching_file_names_file_and_both_hashes_and_leaves_nothing(tmp_path, fake_dataset):
    name = "train-labels-idx1-ubyte"
    bad = to_idx(np.ones(20, dtype=np.uint8))
    (fake_dataset / f"{name}.gz").write_bytes(gzip.compress(bad))
    out = tmp_path / "raw"
    with pytest.raises(DataError) as info:
        fetch.fetch_all(out, fake_dataset, None, None, 1.0)
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
        fetch.fetch_all(tmp_path / "raw", fake_dataset, None, None, 1.0)
    assert not (tmp_path / "raw").exists()


def test_failure_keeps_a_previous_good_output_untouched(tmp_path, fake_dataset):
    out = tmp_path / "raw"
    fetch.fetch_all(out, fake_dataset, None, None, 1.0)
    (fake_dataset / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="has no train-labels-idx1-ubyte or"):
        fetch.fetch_all(out, fake_dataset, None, None, 1.0)
    assert len(list(out.iterdir())) == 4


def test_unreachable_mirror_names_the_url(tmp_path, fake_dataset):
    (fake_dataset / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"http://127\.0\.0\.1:9/train-images-idx3-ubyte\.gz: "
                       r"cannot read .*; not in fetch.package_dir .*src either"):
        fetch.fetch_all(tmp_path / "raw", None, fake_dataset, "http://127.0.0.1:9", 1.0)


def test_a_missing_source_dir_is_an_error_not_a_fallback(tmp_path, fake_dataset):
    with pytest.raises(DataError, match=f"fetch.source_dir: {tmp_path}/nope is not a directory"):
        fetch.fetch_all(tmp_path / "raw", tmp_path / "nope", fake_dataset, None, 1.0)
    partial = tmp_path / "partial"
    partial.mkdir()
    with pytest.raises(DataError, match=f"fetch.source_dir: {partial} has no train-images"):
        fetch.fetch_all(tmp_path / "raw", partial, fake_dataset, None, 1.0)
    assert not (tmp_path / "raw").exists() and not list(tmp_path.glob(".raw-*"))


def test_leftovers_of_a_killed_fetch_are_removed_and_the_output_is_readable(tmp_path,
                                                                             fake_dataset):
    (tmp_path / ".raw-x1y2").mkdir()
    (tmp_path / ".raw-x1y2" / "train-images-idx3-ubyte").write_bytes(bytes(1000))
    fetch.fetch_all(tmp_path / "raw", fake_dataset, None, None, 1.0)
    assert not list(tmp_path.glob(".raw-*"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "raw").stat().st_mode) == 0o777 & ~umask


def test_a_trickling_mirror_is_cut_off_by_the_timeout(tmp_path, fake_dataset):
    """The timeout bounds the whole download, not each read."""
    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    start = time.monotonic()
    try:
        with pytest.raises(DataError, match="not finished within 1 s"):
            fetch.fetch_all(tmp_path / "raw", None, None,
                            f"http://127.0.0.1:{server.server_port}", 1.0)
    finally:
        server.shutdown()
    assert time.monotonic() - start < 3
