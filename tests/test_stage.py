"""The stage helpers: clean-up that never raises a second error, stable numbers, no NaN."""

import math
import shutil

import pytest

from fmnist_mlp import stage
from fmnist_mlp.errors import StudyError


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
        with stage.outputs(partial, tmp_path / "metrics.json"):
            raise StudyError("the stage's own error")


def test_outputs_are_removed_on_any_exception(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("1")
    with pytest.raises(KeyboardInterrupt), stage.outputs(tmp_path / "out"):
        raise KeyboardInterrupt
    assert not (tmp_path / "out").exists()


def test_floats_are_written_with_stable_digits_and_never_nan(tmp_path):
    stage.write_json(tmp_path / "m.json", {"a": 1 / 3, "b": [2 / 3], "n": 7})
    assert (tmp_path / "m.json").read_text() == \
        '{\n  "a": 0.333333,\n  "b": [\n    0.666667\n  ],\n  "n": 7\n}\n'
    with pytest.raises(StudyError, match="bad.json: non-finite value nan"):
        stage.write_json(tmp_path / "bad.json", {"loss": math.nan})
    assert not (tmp_path / "bad.json").exists()
