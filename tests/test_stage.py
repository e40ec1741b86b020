"""The stage helpers: clean-up that never raises a second error, stable numbers, no NaN."""

import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from fmnist_mlp.core import cli, files, resources
from fmnist_mlp.core.errors import StudyError


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


def test_outputs_are_removed_on_any_exception(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("1")
    with pytest.raises(KeyboardInterrupt), files.outputs(tmp_path / "out"):
        raise KeyboardInterrupt
    assert not (tmp_path / "out").exists()


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


def run_stage(monkeypatch, main, *argv, options=None):
    """``cli.run`` of ``main`` as `python stages/x.py ARGV...`: its exit code."""
    monkeypatch.setattr("sys.argv", ["stages/x.py", *argv])
    with pytest.raises(SystemExit) as caught:
        cli.run(main, "x_stage: what it does.\n\nOUT_DIR: where it writes.\n", options)
    return caught.value.code


def test_a_stage_gets_one_path_per_parameter_of_main(monkeypatch):
    got = []

    def main(raw_dir, out_dir):
        got.extend([raw_dir, out_dir])
        raise StudyError("done")

    assert run_stage(monkeypatch, main, "a", "b/c") == "x_stage: error: done"
    assert got == [Path("a"), Path("b/c")]


def test_options_add_their_flags_and_are_built_from_them(monkeypatch):
    from fmnist_mlp.grid.search import Trial

    got = []

    def main(prepared_dir, trial):
        got.extend([prepared_dir, trial])
        raise StudyError("done")

    assert run_stage(monkeypatch, main, "p", "--hidden_layers", "2", "--hidden_units", "8",
                     "--learning_rate", "0.1", "--batch_size", "32", "--l2", "0",
                     "--activation", "tanh", options=Trial) == "x_stage: error: done"
    assert got == [Path("p"), Trial(2, 8, 0.1, 32, 0, "tanh")]
    assert isinstance(got[1].l2, int)  # as DVC wrote it: 0, not 0.0


def test_help_prints_the_usage_and_the_docstring(monkeypatch, capsys):
    assert run_stage(monkeypatch, lambda out_dir: None, "--help") == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: python -m stages.x [-h] OUT_DIR\n\nx_stage: what it does.\n")
    assert err == ""


@pytest.mark.parametrize("argv, error", [
    ((), "the following arguments are required: OUT_DIR"),
    (("a", "b"), "unrecognized arguments: b"),
    (("a", "--force"), "unrecognized arguments: --force"),
])
def test_a_wrong_command_line_exits_2_before_main(monkeypatch, capsys, argv, error):
    called = []

    def main(out_dir):
        called.append(out_dir)

    assert run_stage(monkeypatch, main, *argv) == 2
    assert called == []
    assert capsys.readouterr().err == ("usage: python -m stages.x [-h] OUT_DIR\n"
                                       f"x_stage: error: {error}\n")


def raises(error):
    def main(out_dir):
        raise error
    return main


@pytest.mark.parametrize("error, code", [
    (StudyError("models/x: broken"), "x_stage: error: models/x: broken"),
    (PermissionError(13, "Permission denied", "models/x"),
     "x_stage: error: models/x: Permission denied (errno 13)"),
    (MemoryError("Unable to allocate\n 8 GiB"),
     "x_stage: error: out of memory (Unable to allocate 8 GiB); lower the sizes in params.yaml"),
    (MemoryError(), "x_stage: error: out of memory (MemoryError); lower the sizes in params.yaml"),
])
def test_a_failure_is_one_line_and_exit_1(monkeypatch, error, code):
    assert run_stage(monkeypatch, raises(error), "out") == code  # SystemExit(str): exit 1


def test_ctrl_c_exits_130_in_one_line(monkeypatch, capsys):
    assert run_stage(monkeypatch, raises(KeyboardInterrupt), "out") == 130
    assert capsys.readouterr().err == "x_stage: interrupted; partial outputs removed\n"


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


def test_memory_beyond_what_is_available_is_refused_with_the_key(monkeypatch):
    from fmnist_mlp.core.errors import ConfigError

    monkeypatch.setattr(resources, "available_memory", lambda: 2**30)
    resources.require_memory("scratch.hidden", 2**29)  # fits
    with pytest.raises(ConfigError, match=r"scratch.hidden: needs about 6.14e\+03 GiB of memory, "
                                          r"1 GiB available"):
        resources.require_memory("scratch.hidden", 6.14e3 * 2**30)


@pytest.mark.parametrize("limit, current, expected", [
    (None, None, 8), ("max", "1073741824", 8), (str(4 * 2**30), str(2**30), 3),
    (str(64 * 2**30), str(2**30), 8), ("garbage", "0", 8)])
def test_available_memory_is_psutils_capped_by_the_cgroup_limit(monkeypatch, tmp_path, limit,
                                                                current, expected):
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=8 * 2**30))
    monkeypatch.setattr(resources, "CGROUP", tmp_path)  # None: no cgroup v2 files
    if limit is not None:
        (tmp_path / "memory.max").write_text(limit + "\n")
        (tmp_path / "memory.current").write_text(current + "\n")
    assert resources.available_memory() == expected * 2**30


def test_available_memory_of_this_machine_is_positive():
    assert resources.available_memory() > 0


def test_evaluate_keras_draws_the_chosen_epochs_last_20_not_the_runs_last(tmp_path):
    """The winner chosen at 30 epochs of a run checkpointed up to 40: the final history is
    epochs 11 to 30 of its curves (the run's last 20, 21 to 40, would be another model's).
    Run in its own process: a stage script sets the numeric profile and its signals on import."""
    import json
    import subprocess
    import sys

    history = tmp_path / "history.csv"
    history.write_text("epoch,train_loss,val_loss\n" + "".join(
        f"{e},{e / 100},{e / 1000}\n" for e in range(1, 41)))
    code = ("import json, sys; from pathlib import Path; "
            "from stages.evaluate_keras import final_history; "
            "print(json.dumps(final_history(Path(sys.argv[1]), 30)))")
    out = subprocess.run([sys.executable, "-c", code, str(history)], check=True, text=True,
                         capture_output=True, cwd=Path(__file__).resolve().parents[1]).stdout
    rows = json.loads(out)
    assert [r["epoch"] for r in rows] == list(range(11, 31))
    assert rows[0] == {"epoch": 11, "train_loss": 0.11, "val_loss": 0.011}
