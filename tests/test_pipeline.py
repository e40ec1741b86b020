"""End to end: `dvc repro` on the real data with small params (conftest.SMALL).

The pipeline is built once per session (``small_pipeline``, read only); a test that changes
anything works in its own copy of it (``small_copy``), so no test sees another's changes. The
tests that run Keras stages come first: pytest-xdist hands out tests in file order."""

import csv
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, git, needs_dataset, override, private_copy, ran_stages, run_dvc

pytestmark = needs_dataset


def set_params(repo, text_edit=None, **sections):
    """Change params.yaml (values by section, or a raw text edit); returns the original text."""
    path = repo / "params.yaml"
    original = path.read_text()
    if text_edit:
        path.write_text(text_edit(original))
    override(repo, **sections)
    return original


def assert_one_line(result, code, line):
    out = result.stdout + result.stderr
    assert result.returncode == code, out
    assert line in out, out
    assert "Traceback" not in out, out


def assert_no_native_log_line(output, repo):
    """TensorFlow's C++ lines (I0000, W0000, E0000) go to logs/, not to the terminal."""
    assert not [ln for ln in output.splitlines() if ln[:1] in "EIWF" and ln[1:5].isdigit()], output
    assert "oneDNN custom operations" in (repo / "logs/evaluate_keras.log").read_text()


SMALL_STAGES = ["evaluate_keras", "evaluate_scratch", "fetch", "gradcheck", "landscape", "prepare",
                "search@1-8-0.05-256-0.001-relu", "search@2-8-0.05-256-0.001-relu", "select",
                "train_scratch"]  # what conftest.SMALL runs, sorted
HOSTILE = {  # an outer environment asking for other code paths than the numeric profile's
    "OPENBLAS_CORETYPE": "SkylakeX", "OPENBLAS_NUM_THREADS": "2", "NPY_DISABLE_CPU_FEATURES": "",
    "ONEDNN_MAX_CPU_ISA": "ALL", "TF_NUM_INTRAOP_THREADS": "2", "OMP_NUM_THREADS": "2",
}


@pytest.mark.slow  # a full pipeline run (30-50 s): CI's second lane
def test_every_stage_rerun_gives_the_same_bytes_and_no_tensorflow_log_line(small_pipeline,
                                                                             small_copy):
    """Forced rerun of every stage, under an environment that asks for other kernels and thread
    counts: dvc.lock, which holds the hash of every output, comes out the same as the built
    pipeline's; and no stage, Keras' included, prints TensorFlow's own log lines."""
    result = run_dvc(small_copy, "repro", "--force", env=HOSTILE)
    assert ran_stages(result.stdout) == SMALL_STAGES, result.stdout
    assert (small_copy / "dvc.lock").read_text() == (small_pipeline / "dvc.lock").read_text()
    assert git(small_copy, "status", "--porcelain") == ""
    output = result.stdout + result.stderr  # the stages' own lines are on stderr
    assert "search: layers1-units8" in output and "evaluate_keras: " in output
    assert_no_native_log_line(output, small_copy)


ONE_ITEM = {"hidden_layers": [1]}  # a search change with one new item to train, not two


@pytest.mark.slow  # a full pipeline run (30-50 s): CI's second lane
def test_tanh_networks_run_end_to_end(small_pipeline, small_copy):
    """The activation is one param per model: a tanh scratch model (gradient check, SGD,
    evaluation, landscape) and a tanh search item, through DVC; then relu again, with the tanh
    item removed: every output back from the run-cache, no stage run."""
    original = set_params(small_copy, scratch={"activation": "tanh"},
                          search={"activation": ["tanh"], **ONE_ITEM})
    result = run_dvc(small_copy, "repro")
    out = result.stdout + result.stderr  # the stages' own lines are on stderr
    tanh_item = "layers1-units8-lr0.05-batch256-l2_0.001-tanh"
    assert ran_stages(result.stdout) == [
        "evaluate_keras", "evaluate_scratch", "gradcheck", "landscape",
        "search@1-8-0.05-256-0.001-tanh", "select", "train_scratch"], out
    assert "parameters (tanh has no kinks)" in out, out
    assert "784-10-10-10-10 tanh, L2 on every kernel" in out
    assert_no_native_log_line(out, small_copy)
    with np.load(small_copy / "models/scratch/model.npz") as f:
        assert json.loads(str(f["spec"]))["activation"] == "tanh"
    assert (small_copy / "models/search" / tanh_item).is_dir()
    config = json.loads((small_copy / "models/best/config.json").read_text())
    assert config["activation"] == "tanh"
    assert json.loads((small_copy / "reports/gradcheck.json").read_text())["kinks"] == 0
    assert "up to date" in run_dvc(small_copy, "status").stdout

    (small_copy / "params.yaml").write_text(original)
    shutil.rmtree(small_copy / "models/search" / tanh_item)
    (small_copy / "plots/search" / f"{tanh_item}.csv").unlink()
    out = run_dvc(small_copy, "repro").stdout
    assert ran_stages(out) == [], out
    lock = yaml.safe_load((small_copy / "dvc.lock").read_text())["stages"]
    assert "search@1-8-0.05-256-0.001-tanh" in lock  # `dvc repro` keeps what dvc.yaml dropped
    del lock["search@1-8-0.05-256-0.001-tanh"]
    assert lock == yaml.safe_load((small_pipeline / "dvc.lock").read_text())["stages"]


@pytest.mark.slow  # a full pipeline run (30-50 s): CI's second lane
def test_adding_a_grid_value_runs_only_the_new_items(small_copy):
    """Then the old grid again: its items are up to date, select warns of the 2 left behind."""
    original = set_params(small_copy, search={"batch_size": [256, 512]})
    out = run_dvc(small_copy, "repro", "select").stdout
    assert ran_stages(out) == ["search@1-8-0.05-512-0.001-relu",
                               "search@2-8-0.05-512-0.001-relu", "select"], out
    assert json.loads((small_copy / "reports/search.json").read_text())["configs"] == 8
    (small_copy / "params.yaml").write_text(original)
    result = run_dvc(small_copy, "repro", "select")
    assert ran_stages(result.stdout) == ["select"], result.stdout
    assert "also holds 2 item(s) not in the grid" in result.stderr
    assert json.loads((small_copy / "reports/search.json").read_text())["configs"] == 4


FAILED = 255  # `dvc repro`'s exit status when a stage fails (the stage itself exits 1)
BAD_ITEMS = [  # (id, learning rates, select's line, its line once the grid also has lr 0.05)
    ("diverged: a NaN loss, an exploding but finite one", [1e30, 100.0],
     "every item diverged, nothing to select", "left out 2 item(s) with a diverged seed"),
    ("at chance level", [2.0], "every configuration is no better than chance",
     "left out 2 configuration(s) no better than chance (1/10)"),
]


@pytest.mark.slow  # two pipeline runs a case (15-25 s): CI's second lane
@pytest.mark.parametrize("rates, failure, accepted", [case[1:] for case in BAD_ITEMS],
                         ids=[case[0] for case in BAD_ITEMS])
def test_a_grid_of_bad_items_fails_select_and_one_good_value_recovers(
        small_copy, rates, failure, accepted):
    """Only bad items: select stops with one line and no output. The same items beside a good
    one are accepted: select leaves them out, names them, and nothing is NaN."""
    set_params(small_copy, search={"learning_rate": rates, **ONE_ITEM})
    assert_one_line(run_dvc(small_copy, "repro", "select", check=False), FAILED, failure)
    assert not (small_copy / "models/best").exists()
    set_params(small_copy, search={"learning_rate": [0.05, *rates], **ONE_ITEM})
    result = run_dvc(small_copy, "repro", "select", check=False)
    assert_one_line(result, 0, accepted)
    assert ran_stages(result.stdout) == ["select"], result.stdout  # the items are all up to date
    assert (small_copy / "models/best/config.json").is_file()
    text = "".join(p.read_text() for p in (small_copy / "metrics").glob("*.json"))
    assert "NaN" not in text and "Infinity" not in text


BAD_PARAMS = [  # (id, params change, stage, exit code, line shown, output that must not exist)
    ("subset leaves a class out", dict(prepare={"subset": 59999}), "prepare", FAILED,
     "prepare.subset: expected at most 59990", "data/prepared"),
    ("split too small", dict(prepare={"subset": 100, "val_fraction": 0.05}), "prepare", FAILED,
     "leaves 5 for the val split, fewer than the 10 classes", "data/prepared"),
    ("missing key", dict(text_edit=lambda t: t.replace("  epochs: 2\n", "", 1)),
     "train_scratch", FAILED, "scratch.epochs: missing from params.yaml", "models/scratch"),
    ("large epsilon", dict(gradcheck={"epsilon": 0.01}), "gradcheck", FAILED,
     "lower it before concluding that the gradient is wrong", "metrics/gradcheck.json"),
    ("oversize scratch layer", dict(scratch={"hidden": [1_000_000_000]}), "gradcheck", FAILED,
     "scratch.hidden: needs about", "metrics/gradcheck.json"),
    ("unknown activation", dict(scratch={"activation": "gelu"}), "train_scratch", FAILED,
     "scratch.activation: unknown activation 'gelu' (known: relu, sigmoid, tanh)",
     "models/scratch"),
]


@pytest.mark.parametrize("change, target, code, line, absent",
                         [case[1:] for case in BAD_PARAMS], ids=[case[0] for case in BAD_PARAMS])
def test_bad_params_give_one_line_and_no_output_then_good_params_recover(
        small_copy, change, target, code, line, absent):
    original = set_params(small_copy, **change)
    assert_one_line(run_dvc(small_copy, "repro", target, check=False), code, line)
    assert not (small_copy / absent).exists()
    (small_copy / "params.yaml").write_text(original)
    run_dvc(small_copy, "repro", target)
    assert (small_copy / absent).exists()


SCRATCH_RUN = ("--force", "--single-item", "train_scratch")  # DVC sees no change in 1e-1, 2.0
ACCEPTED = [  # params DVC reads as valid, which the stages must accept too: (change, repro args)
    ("whole number in a float axis", dict(search={"l2": [0], **ONE_ITEM}), ("select",),
     "best of 2"),
    ("exponent notation", dict(text_edit=lambda t: t.replace("learning_rate: 0.1",
                                                             "learning_rate: 1e-1", 1)),
     SCRATCH_RUN, "train_scratch: val accuracy"),
    ("whole float epochs", dict(scratch={"epochs": 2.0}), SCRATCH_RUN,
     "train_scratch: val accuracy"),
    ("a dead model", dict(scratch={"learning_rate": 100.0}), SCRATCH_RUN,
     "is no better than chance (1/10)"),
]


TRAINS_KERAS = {"whole number in a float axis"}  # 18 s: a new search item; CI's second lane


@pytest.mark.parametrize("change, args, line", [
    pytest.param(*case[1:], id=case[0], marks=[pytest.mark.slow] if case[0] in TRAINS_KERAS
                 else []) for case in ACCEPTED])
def test_params_dvc_accepts_run(small_copy, change, args, line):
    set_params(small_copy, **change)
    result = run_dvc(small_copy, "repro", *args, check=False)
    assert_one_line(result, 0, line)
    assert args[-1] in ran_stages(result.stdout), result.stdout
    text = "".join(p.read_text() for p in (small_copy / "metrics").glob("*.json"))
    assert "NaN" not in text and "Infinity" not in text


def test_second_clone_sharing_the_cache_runs_no_stage(small_copy, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(small_copy), str(clone))
    run_dvc(clone, "cache", "dir", "--local", str(small_copy / ".dvc" / "cache"))
    out = run_dvc(clone, "repro").stdout
    assert "Running stage" not in out, out
    assert (clone / "models/scratch/trajectory.npz").is_file()
    assert git(clone, "status", "--porcelain") == ""
    assert "up to date" in run_dvc(clone, "status").stdout


def test_a_stage_runs_the_library_of_the_directory_it_runs_in(small_copy):
    """As in `dvc exp run --temp`: the stage runs in a copy whose library differs from the one
    that is importable from elsewhere (here the workspace, on PYTHONPATH)."""
    cli = small_copy / "fmnist_mlp" / "core" / "cli.py"
    text = cli.read_text()
    edited = text.replace('print(f"{name}: {message}"',
                          'print(f"{name} (the copy\'s library): {message}"')
    assert edited != text, f"{cli}: no log line to edit"
    cli.write_text(edited)
    result = run_dvc(small_copy, "repro", "--single-item", "gradcheck",
                     env={"PYTHONPATH": str(ROOT)})
    assert ran_stages(result.stdout) == ["gradcheck"], result.stdout
    assert "gradcheck (the copy's library): check_grad" in result.stderr + result.stdout


def test_a_scratch_change_runs_no_keras_stage(small_copy):
    """As `dvc exp run -S scratch.epochs=3`: only what depends on the scratch model reruns."""
    override(small_copy, scratch={"epochs": 3})
    out = run_dvc(small_copy, "repro").stdout
    assert ran_stages(out) == ["evaluate_scratch", "landscape", "train_scratch"], out


def stage_command(repo, *argv, **kwargs):
    return subprocess.Popen([sys.executable, "-m", *argv], cwd=repo, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_stage_scripts_report_misuse_and_broken_inputs_in_one_line(small_copy, tmp_path):
    wrong = stage_command(small_copy, "stages.prepare", "data/raw")
    assert_one_line(subprocess.CompletedProcess([], wrong.wait(), *wrong.communicate()), 2,
                    "usage: python -m stages.prepare [-h] RAW_DIR OUT_DIR\n"
                    "prepare: error: the following arguments are required: OUT_DIR")
    broken = tmp_path / "broken"
    shutil.copytree(small_copy / "models/best", broken)
    (broken / "model_seed0.keras").write_bytes(b"not a zip")
    (tmp_path / "file").write_text("a regular file")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "model.npz").write_bytes(b"PK\x03\x04 truncated")
    for argv, line in [
        (("stages.evaluate_keras", "data/prepared", str(broken), str(tmp_path / "m"),
          str(tmp_path / "r"), str(tmp_path / "c.csv"), str(tmp_path / "h.csv")),
         "model_seed0.keras: cannot load the Keras model"),
        (("stages.evaluate_scratch", "data/prepared", str(scratch), str(tmp_path / "m"),
          str(tmp_path / "r"), str(tmp_path / "c.csv")),
         "model.npz: not a readable scratch model"),
        (("stages.landscape", "data/prepared", str(scratch), str(tmp_path / "l.npz"),
          str(tmp_path / "m"), str(tmp_path / "r"), str(tmp_path)),
         "model.npz: not a readable scratch model"),
        (("stages.train_scratch", "data/prepared", str(tmp_path / "file" / "model"),
          str(tmp_path / "m"), str(tmp_path / "h.csv")),  # an output below a regular file
         f"{tmp_path / 'file' / 'model'}: cannot write ({tmp_path / 'file'} is not a directory)"),
    ]:
        process = stage_command(small_copy, *argv)
        assert_one_line(subprocess.CompletedProcess([], process.wait(), *process.communicate()),
                        1, line)
        assert not (tmp_path / "m").exists()


def read_until(stream, text: str, timeout: float) -> str:
    """What ``stream`` (a pipe from a child) gives until ``text`` appears, EOF or ``timeout`` s."""
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            break
        seen += chunk.decode(errors="replace")
    return seen


def test_ctrl_c_stops_a_stage_with_one_line_and_no_output(small_copy, tmp_path):
    out = tmp_path / "scratch"
    override(small_copy, scratch={"epochs": 10_000})  # about a minute
    process = stage_command(small_copy, "stages.train_scratch", "data/prepared", str(out),
                            str(tmp_path / "m.json"), str(tmp_path / "h.csv"))
    try:
        before = read_until(process.stderr, "train_loss=", timeout=60)  # an epoch is done
        assert "train_loss=" in before, before
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        process.kill()
    stdout, stderr = process.communicate()
    assert_one_line(subprocess.CompletedProcess([], code, stdout, before + stderr), 130,
                    "train_scratch: interrupted")
    assert not out.exists() and not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("search, item, said", [
    ({"hidden_layers": [1_000_000]}, "layers1000000-units8-lr0.05-batch256-l2_0.001-relu",
     "search.hidden_units 8 x hidden_layers 1000000: needs about"),  # a million activations
    ({"hidden_units": [1_000_000_000]}, "layers1-units1000000000-lr0.05-batch256-l2_0.001-relu",
     "search: 1 item(s) to train x 2 seed(s) x 2 epoch(s) of checkpoints need about"),  # disk
], ids=["memory", "disk"])
def test_an_oversize_search_item_is_refused_before_training(small_copy, search, item, said):
    original = set_params(small_copy, search=search)
    assert_one_line(run_dvc(small_copy, "repro", "select", check=False), FAILED, said)
    assert not (small_copy / "models/search" / item).exists()
    (small_copy / "params.yaml").write_text(original)
    assert ran_stages(run_dvc(small_copy, "repro", "select").stdout) == []
    assert "up to date" in run_dvc(small_copy, "status").stdout


def test_corrupt_source_fails_fetch_and_leaves_no_raw_then_good_params_recover(small_copy,
                                                                                  tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (bad / name).write_bytes(b"\x00\x00\x08\x01" + bytes(8))
    original = set_params(small_copy, fetch={"source_dir": str(bad)})
    result = run_dvc(small_copy, "repro", "fetch", check=False)
    assert result.returncode != 0
    assert "train-images-idx3-ubyte (from" in result.stderr
    assert "SHA-256 mismatch" in result.stderr
    assert not (small_copy / "data/raw").exists()
    (small_copy / "params.yaml").write_text(original)
    run_dvc(small_copy, "repro", "fetch")
    assert len(list((small_copy / "data/raw").iterdir())) == 4
    assert "up to date" in run_dvc(small_copy, "status").stdout


def test_invalid_param_stops_with_the_key_and_no_output(small_copy):
    override(small_copy, scratch={"learning_rate": 0})
    result = run_dvc(small_copy, "repro", "train_scratch", check=False)
    assert result.returncode != 0
    assert "scratch.learning_rate: expected a value > 0, got 0" in result.stderr + result.stdout
    assert not (small_copy / "models/scratch").exists()


def test_landscape_samples_beyond_the_split_stop_with_the_key(small_copy):
    override(small_copy, landscape={"samples": 10 ** 6})
    result = run_dvc(small_copy, "repro", "landscape", check=False)
    assert result.returncode != 0
    assert ("landscape.samples: expected at most the 4000 training images, got 1000000"
            in result.stderr + result.stdout)
    assert not (small_copy / "metrics/landscape.json").exists()


UNRELATED_EDITS = {  # a file far from Keras -> a line appended to it
    "fmnist_mlp/selection/ranking.py": "\n# the selection rule, edited\n",
    "fmnist_mlp/evaluation/stats.py": "\n# the statistics, edited\n",
    "fmnist_mlp/evaluation/metrics.py": "\n# a test-set metric, edited\n",
    "fmnist_mlp/gradcheck/check.py": "\n# the gradient check, edited\n",
    "fmnist_mlp/sgd/minibatch.py": "\n# the scratch SGD, edited\n",
    "fmnist_mlp/selection/figure.py": "\n# the search's figure, edited\n",
    "stages/select_best.py": "\n# the select stage, edited\n",
    "fmnist_mlp/numpy_mlp/scratch.py": "\n# the scratch section's params checks, edited\n",
    "fmnist_mlp/landscape/plane.py": "\n# the landscape section's params checks, edited\n",
    "fmnist_mlp/landscape/figures.py": "\n# a figure, edited\n",
    "fmnist_mlp/numpy_mlp/mlp.py": "\n# the from-scratch numpy maths, edited\n",
}


def test_an_edit_far_from_keras_leaves_every_search_item_up_to_date(small_copy):
    """Exactly the stages with an edited file among their deps are out of date: select,
    evaluate_keras (the statistics, a test-set metric) and the scratch stages; no search
    item."""
    for name, line in UNRELATED_EDITS.items():
        with open(small_copy / name, "a") as f:
            f.write(line)
    status = json.loads(run_dvc(small_copy, "status", "--json").stdout)
    stages = yaml.safe_load((small_copy / "dvc.yaml").read_text())["stages"]
    touched = sorted(name for name, stage in stages.items() if any(
        edited == dep or edited.startswith(f"{dep}/")
        for dep in stage["deps"] for edited in UNRELATED_EDITS))
    assert "search" not in touched and {"select", "train_scratch", "landscape"} <= set(touched)
    assert sorted(status) == touched, status


def cached_files(repo):
    """The files of the outputs DVC caches, by path in ``repo``."""
    return {path.relative_to(repo): path for name in ("data", "models", "reports", "plots/search")
            for path in (repo / name).rglob("*") if not path.is_dir()}


def test_a_copy_is_up_to_date_and_a_second_repro_changes_nothing(small_pipeline, small_copy):
    """The copy (made in about 1 s) has every output, restored and not rerun, none of them a link:
    `dvc repro` runs no stage, restores nothing from the run-cache and leaves dvc.lock and git as
    the build left them."""
    out = run_dvc(small_copy, "repro").stdout
    assert "Running stage" not in out and "is cached" not in out, out
    assert "Data and pipelines are up to date." in out, out
    assert (small_copy / "dvc.lock").read_text() == (small_pipeline / "dvc.lock").read_text()
    assert git(small_copy, "status", "--porcelain") == ""
    copied = cached_files(small_copy)
    assert sorted(copied) == sorted(cached_files(small_pipeline)) and len(copied) == 36
    assert [path for path in copied.values() if path.is_symlink() or path.stat().st_nlink > 1] == []


def test_writing_into_a_copys_output_leaves_the_shared_cache_intact(small_pipeline, small_copy):
    """Outputs are copies, never links into the cache: root ignores read-only modes."""
    output = small_copy / "models/scratch/model.npz"
    output.write_bytes(b"overwritten")
    assert (small_pipeline / "models/scratch/model.npz").read_bytes()[:2] == b"PK"
    assert "models/scratch" in run_dvc(small_copy, "status").stdout
    run_dvc(small_copy, "checkout", "--force", "models/scratch")
    assert output.read_bytes()[:2] == b"PK"
    assert "up to date" in run_dvc(small_copy, "status").stdout


# Below: what only reads the built pipeline.


def test_foundation_stages_write_sane_metrics(small_pipeline):
    grad = json.loads((small_pipeline / "metrics/gradcheck.json").read_text())
    report = json.loads((small_pipeline / "reports/gradcheck.json").read_text())
    assert report["relative_error"] < 1e-7 and report["check_grad"] < 1e-5
    assert grad == {"log10_grad_error": pytest.approx(np.log10(report["relative_error"]),
                                                          abs=1e-5)}
    scratch = json.loads((small_pipeline / "metrics/scratch.json").read_text())
    assert set(scratch) == {"val_accuracy", "val_loss"}
    assert 0.3 < scratch["val_accuracy"] <= 1.0
    assert 0.0 < scratch["val_loss"] < 2.3
    history = (small_pipeline / "plots/scratch_history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss,train_accuracy,val_accuracy"
    assert len(history) == 3
    with np.load(small_pipeline / "models/scratch/trajectory.npz") as f:
        assert f["trajectory"].shape == (3, 8180)
    with np.load(small_pipeline / "data/prepared/val.npz") as f:
        assert f["X"].shape == (1000, 784) and f["Y"].shape == (1000, 10)


def test_search_select_evaluate_write_their_metrics_and_plots(small_pipeline):
    search = json.loads((small_pipeline / "metrics/search.json").read_text())
    assert set(search) == {"val_accuracy", "accuracy_std", "val_loss", "seed0_val_accuracy",
                           "possibly_best", "top_effect", "top_effect_ci"}
    assert 1 <= search["possibly_best"] <= 4 and search["top_effect_ci"] > 0
    assert search["accuracy_std"] >= 0
    report = json.loads((small_pipeline / "reports/search.json").read_text())
    assert report["best"]["label"] in {"layers 1, epochs 1", "layers 1, epochs 2",
                                       "layers 2, epochs 1", "layers 2, epochs 2"}  # what varies
    assert report["configs"] == 4 and report["items"] == 2 and report["seeds"] == [0, 1]
    assert report["paired_runner_up"].startswith(("distinguishable", "not distinguishable"))
    assert 0 <= report["p_runner_up"] <= 1
    assert report["verdict"].startswith(f"{search['possibly_best']} of 4 configuration(s) could "
                                        f"be the best (Hsu's MCB, 95% simultaneous)")
    effects = json.loads((small_pipeline / "reports/search_effects.json").read_text())
    assert [(r["axis"], r["level"]) for r in effects["levels"] if "effect" in r] == [
        ("hidden_layers", 2), ("epochs", 2)]  # what varies in the small grid
    assert (effects["runs"], effects["observations"], effects["noise"]["df_runs"]) == (4, 8, 1)
    chart = (small_pipeline / "plots/search_effects.csv").read_text().splitlines()
    assert chart[0] == "effect,axis,estimate,low,high,p" and len(chart) == 3
    assert chart[1].startswith("layers 2 vs layers 1,hidden_layers,")
    assert report["single_seed"]["seed"] == 0
    best_seeds = report["best"]["val_accuracy_seeds"]
    assert search["val_accuracy"] == pytest.approx(np.mean(best_seeds), abs=1e-5)
    results = (small_pipeline / "reports/search_results.csv").read_text().splitlines()
    assert results[0] == ("label,hidden_layers,hidden_units,learning_rate,batch_size,l2,"
                          "activation,epochs,val_accuracy,std,ci95,val_loss,possibly_best,"
                          "mcb_low,mcb_high,vs_best_high,equivalence,p_vs_best,"
                          "distinguishable,val_accuracy_seeds") and len(results) == 5
    for item in ("layers1-units8-lr0.05-batch256-l2_0.001-relu",
                 "layers2-units8-lr0.05-batch256-l2_0.001-relu"):
        curve = (small_pipeline / "plots/search" / f"{item}.csv").read_text().splitlines()
        assert curve[0] == "epoch,train_loss,val_loss,train_accuracy,val_accuracy"
        assert len(curve) == 3
        models = sorted(p.name for p in (small_pipeline / "models/search" / item).glob("*.keras"))
        assert models == [f"model_seed{s}_e{e}.keras" for s in (0, 1) for e in (1, 2)]
    assert sorted(p.name for p in (small_pipeline / "models/best").iterdir()) == [
        "config.json", "history.csv", "model_seed0.keras", "model_seed1.keras"]
    scratch = json.loads((small_pipeline / "metrics/test_scratch.json").read_text())
    assert set(scratch) == {"test_loss", "test_accuracy"} and 0.2 < scratch["test_accuracy"] <= 1
    keras_test = json.loads((small_pipeline / "metrics/test_keras.json").read_text())
    assert set(keras_test) == {"test_accuracy", "accuracy_std", "test_loss"}
    details = json.loads((small_pipeline / "reports/test_keras.json").read_text())
    assert list(details["test_accuracy"]) == ["0", "1"] and len(details["per_class_accuracy"]) == 10
    assert keras_test["test_accuracy"] == pytest.approx(
        np.mean(list(details["test_accuracy"].values())), abs=1e-6)
    assert len(json.loads((small_pipeline / "reports/test_scratch.json").read_text())
               ["per_class_accuracy"]) == 10
    confusion = (small_pipeline / "plots/confusion_keras.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 10_001
    final = (small_pipeline / "plots/final_history.csv").read_text().splitlines()
    assert final[0] == "epoch,train_loss,val_loss" and len(final) == 1 + report["best"]["epochs"]
    assert (small_pipeline / "plots/search_results.png").stat().st_size > 5_000


def test_landscape_writes_metrics_grids_and_images(small_pipeline):
    land = json.loads((small_pipeline / "metrics/landscape.json").read_text())
    assert set(land) == {"plane_variance", "loss_min"}
    report = json.loads((small_pipeline / "reports/landscape.json").read_text())
    pc1, pc2 = report["explained_variance"]
    assert 0 < pc2 <= pc1 and pc1 + pc2 <= 1
    assert land["plane_variance"] == pytest.approx(pc1 + pc2, abs=1e-5)
    assert {"explained_variance", "loss_min", "loss_max", "trajectory_gap",
            "off_plane"} <= set(report)
    assert 0 < report["loss_min"] == land["loss_min"] < report["loss_max"]
    with np.load(small_pipeline / "models/landscape/landscape.npz") as f:
        assert f["loss"].shape == (12, 12) and f["coords"].shape == (3, 2)
    for name in ("landscape_surface.png", "landscape_contour.png"):
        assert (small_pipeline / "plots" / name).stat().st_size > 10_000


def test_metrics_show_is_a_short_readable_table(small_pipeline):
    """About 17 headline numbers in at most 220 columns; the gradient check is not 0.0."""
    out = run_dvc(small_pipeline, "metrics", "show").stdout
    lines = out.splitlines()
    assert max(map(len, lines)) <= 220, out
    numbers = sum(cell != "-" for line in lines[1:] for cell in line.split()[1:])
    assert 15 <= numbers <= 19, out
    row = next(ln for ln in lines if ln.startswith("metrics/gradcheck.json")).split()
    assert float(row[lines[0].split().index("log10_grad_error")]) < -6, row  # log10 of ~1e-8


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE = ["--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]


def rendered_dom(page, *flags):
    """The page's DOM after its scripts ran, in headless Chromium with no network."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *OFFLINE,
         *flags, "--virtual-time-budget=30000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout


def drawn(page: Path) -> dict[str, str]:
    """Each chart's div (by id) in the DOM after the page's scripts ran, each one checked drawn
    by vega-embed with marks in it."""
    html = page.read_text()
    assert not re.findall(r"<script[^>]+src=", html), "the page loads a script from elsewhere"
    ids = re.findall(r"vegaEmbed\('#([\w-]+)'", html)
    dom = rendered_dom(page)
    starts = [dom.find(f'<div id="{div_id}"') for div_id in ids]  # vega-embed fills each div
    assert -1 not in starts, dict(zip(ids, starts))
    charts = {}
    for div_id, start, end in zip(ids, starts, [*starts[1:], len(dom)]):
        tag, body = dom[start:end].split(">", 1)
        assert 'data-rendered="yes"' in tag, f"{div_id}: not drawn ({tag})"
        assert body.count('role="graphics-symbol"') > 0, f"{div_id}: no marks drawn"
        charts[div_id] = body
    return charts


CHARTS = ["scratch_loss", "scratch_accuracy", "search_items", "axis_effects", "final_history",
          "plots_confusion_scratch_csv", "plots_confusion_keras_csv"]  # whatever the grid


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM, reason="no chromium (make test installs it)")
def test_plots_page_renders_every_plot_offline_and_stays_bounded(small_pipeline, tmp_path):
    """The page of the small pipeline, then of a copy whose overlay holds 60 items: the same 7
    charts, every one drawn (the axes' effects: a mark and an interval each); 10 items in colour
    (named in the legend, best first), the rest grey; one item's curves still drawn on request
    (`dvc plots show plots/search/<item>.csv`)."""
    run_dvc(small_pipeline, "plots", "show", "-o", str(tmp_path / "page"))
    charts = drawn(tmp_path / "page" / "index.html")
    assert sorted(charts) == sorted(CHARTS)
    effects = (small_pipeline / "plots/search_effects.csv").read_text().splitlines()[1:]
    assert charts["axis_effects"].count('aria-roledescription="rule mark"') == len(effects) + 1
    assert charts["axis_effects"].count('aria-roledescription="point"') == len(effects)
    assert all(f">{row.split(',')[0]}</text>" in charts["axis_effects"] for row in effects)
    html = (tmp_path / "page" / "index.html").read_text()
    images = re.findall(r'<img src="(static/[^"]+)"', html)
    assert len(images) == 3 and all((tmp_path / "page" / src).is_file() for src in images), images

    repo = private_copy(small_pipeline, tmp_path / "repo")
    names = [f"layers{1 + k % 3}, units{8 + k}" for k in range(60)]
    with (repo / "plots/search_val_accuracy.csv").open("w", newline="") as f:
        table = csv.writer(f)  # as select writes it: a label with commas is quoted
        table.writerow(["epoch", "item", "rank", "val_accuracy"])
        table.writerows([epoch, name, rank, f"{0.5 + 0.004 * (60 - rank) + 0.01 * epoch:.4f}"]
                        for rank, name in enumerate(names, 1) for epoch in (1, 2))
    run_dvc(repo, "plots", "show", "-o", str(tmp_path / "page60"))
    charts = drawn(tmp_path / "page60" / "index.html")
    assert sorted(charts) == sorted(CHARTS)
    legend = re.findall(r">(layers\d, units\d+)</text>", charts["search_items"])
    assert legend == names[:10], legend  # the leaders, in rank order; the other 50 grey
    item = next((repo / "plots/search").glob("*.csv")).relative_to(repo)
    run_dvc(repo, "plots", "show", "-o", str(tmp_path / "one"), str(item))
    assert len(drawn(tmp_path / "one" / "index.html")) == 1
