"""A stage's outputs and writers (fmnist_mlp/core/files.py): outputs checked writable before any
work and removed on any failure, a clean-up that never raises a second error, an OS error in
one line naming the path, JSON with stable digits (or every digit) and never NaN."""

import math
import shutil

import pytest

from fmnist_mlp.core import files
from fmnist_mlp.core.errors import StudyError


def test_outputs_are_removed_on_any_exception(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("1")
    with pytest.raises(KeyboardInterrupt), files.outputs(tmp_path / "out"):
        raise KeyboardInterrupt
    assert not (tmp_path / "out").exists()


def test_cleanup_that_cannot_remove_raises_the_first_error_only(tmp_path, monkeypatch):
    """On a read-only disk the clean-up fails too; the stage's own error is what shows."""
    partial = tmp_path / "out"
    partial.mkdir()
    (tmp_path / "metrics.json").write_text("{}")

    def read_only(*args, **kwargs):
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(shutil, "rmtree", read_only)
    monkeypatch.setattr(type(tmp_path), "unlink", read_only)
    with pytest.raises(StudyError, match="the stage's own error"):
        with files.outputs(partial, tmp_path / "metrics.json"):
            raise StudyError("the stage's own error")


def below_a_file(tmp, monkeypatch):
    (tmp / "file").write_text("x")
    return tmp / "file" / "out"


def on_a_read_only_disk(tmp, monkeypatch):
    import tempfile

    def erofs(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", erofs)
    return tmp / "models" / "out"


@pytest.mark.parametrize("make, reason", [
    (below_a_file, "is not a directory"), (on_a_read_only_disk, "Read-only file system")])
def test_an_output_that_cannot_be_written_fails_before_any_work(tmp_path, monkeypatch, make,
                                                                  reason):
    out = make(tmp_path, monkeypatch)
    ran = []
    with pytest.raises(StudyError, match=f"{out}: cannot write .*{reason}"):
        with files.outputs(out):
            ran.append(1)
    assert ran == [] and not list(tmp_path.rglob(".write-check-*"))
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("errno, strerror", [(30, "Read-only file system"),
                                             (28, "No space left on device")])
def test_an_os_error_while_writing_is_one_line_naming_the_path(tmp_path, errno, strerror):
    """EROFS or ENOSPC in the middle of a save (zipfile raises it without a file name)."""
    out = tmp_path / "model"
    with pytest.raises(StudyError) as caught:
        with files.outputs(out):
            out.mkdir()
            (out / "half").write_text("x")
            raise OSError(errno, strerror)
    assert str(caught.value) == f"{out}: {strerror} (errno {errno})"
    assert not out.exists()


def test_floats_are_written_with_stable_digits_and_never_nan(tmp_path):
    files.write_json(tmp_path / "m.json", {"a": 1 / 3, "b": [2 / 3], "n": 7})
    assert (tmp_path / "m.json").read_text() == \
        '{\n  "a": 0.333333,\n  "b": [\n    0.666667\n  ],\n  "n": 7\n}\n'
    with pytest.raises(StudyError, match="bad.json: non-finite value nan"):
        files.write_json(tmp_path / "bad.json", {"loss": math.nan})
    assert not (tmp_path / "bad.json").exists()


def test_exact_floats_keep_every_digit_and_numpy_integers_are_ints(tmp_path):
    import numpy as np

    files.write_json(tmp_path / "x.json", {"loss": 1 / 3, "n": np.int64(7)}, exact=True)
    assert (tmp_path / "x.json").read_text() == '{\n  "loss": 0.3333333333333333,\n  "n": 7\n}\n'
