"""End to end: `dvc repro` on the real data in a temporary copy of the repo, with small params."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, copy_project, needs_dataset, run_dvc

from fmnist_mlp.engine.repro import prune_lock

pytestmark = needs_dataset


def override(repo, **sections):
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


SMALL = dict(
    prepare={"subset": 5000},
    scratch={"epochs": 2, "learning_rate": 0.1},
    search={"hidden_layers": [1, 2], "hidden_units": [8], "batch_size": [256], "epochs": [1, 2],
            "seeds": [0, 1]},
    landscape={"grid": 12, "samples": 300},
)


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory):
    """The whole pipeline once on 5 000 images, a 2x1 grid, 2 epochs."""
    repo = copy_project(tmp_path_factory.mktemp("e2e") / "repo")
    override(repo, **SMALL)
    run_dvc(repo, "repro")
    (repo.parent / "fixture.lock").write_text((repo / "dvc.lock").read_text())  # as first run
    return repo


def test_foundation_stages_write_sane_metrics(small_repo):
    grad = json.loads((small_repo / "metrics/gradcheck.json").read_text())
    report = json.loads((small_repo / "reports/gradcheck.json").read_text())
    assert report["relative_error"] < 1e-7 and report["check_grad"] < 1e-5
    assert grad == {"log10_grad_error": pytest.approx(np.log10(report["relative_error"]),
                                                          abs=1e-5)}
    scratch = json.loads((small_repo / "metrics/scratch.json").read_text())
    assert set(scratch) == {"val_accuracy", "val_loss"}
    assert 0.3 < scratch["val_accuracy"] <= 1.0
    assert 0.0 < scratch["val_loss"] < 2.3
    history = (small_repo / "plots/scratch_history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss,train_accuracy,val_accuracy"
    assert len(history) == 3
    with np.load(small_repo / "models/scratch/trajectory.npz") as f:
        assert f["trajectory"].shape == (3, 8180)
    with np.load(small_repo / "data/prepared/val.npz") as f:
        assert f["X"].shape == (1000, 784) and f["Y"].shape == (1000, 10)


def test_search_select_evaluate_write_their_metrics_and_plots(small_repo):
    search = json.loads((small_repo / "metrics/search.json").read_text())
    assert set(search) == {"val_accuracy", "accuracy_std", "val_loss", "p_runner_up",
                           "seed0_val_accuracy"}
    assert 0 <= search["p_runner_up"] <= 1 and search["accuracy_std"] >= 0
    report = json.loads((small_repo / "reports/search.json").read_text())
    assert report["best"]["label"] in {"layers 1, epochs 1", "layers 1, epochs 2",
                                       "layers 2, epochs 1", "layers 2, epochs 2"}  # what varies
    assert report["configs"] == 4 and report["items"] == 2 and report["seeds"] == [0, 1]
    assert report["verdict"].startswith(("distinguishable", "not distinguishable"))
    assert report["single_seed"]["seed"] == 0
    best_seeds = report["best"]["val_accuracy_seeds"]
    assert search["val_accuracy"] == pytest.approx(np.mean(best_seeds), abs=1e-5)
    results = (small_repo / "reports/search_results.csv").read_text().splitlines()
    assert results[0] == ("label,hidden_layers,hidden_units,learning_rate,batch_size,l2,"
                          "activation,epochs,val_accuracy,std,ci95,val_loss,p_vs_best,"
                          "distinguishable,val_accuracy_seeds") and len(results) == 5
    for item in ("layers1-units8-lr0.05-batch256-l2_0.001-relu",
                 "layers2-units8-lr0.05-batch256-l2_0.001-relu"):
        curve = (small_repo / "plots/search" / f"{item}.csv").read_text().splitlines()
        assert curve[0] == "epoch,train_loss,val_loss,train_accuracy,val_accuracy"
        assert len(curve) == 3
        models = sorted(p.name for p in (small_repo / "models/search" / item).glob("*.keras"))
        assert models == [f"model_seed{s}_e{e}.keras" for s in (0, 1) for e in (1, 2)]
    assert sorted(p.name for p in (small_repo / "models/best").iterdir()) == [
        "config.json", "history.csv", "model_seed0.keras", "model_seed1.keras"]
    scratch = json.loads((small_repo / "metrics/test_scratch.json").read_text())
    assert set(scratch) == {"test_loss", "test_accuracy"} and 0.2 < scratch["test_accuracy"] <= 1
    keras_test = json.loads((small_repo / "metrics/test_keras.json").read_text())
    assert set(keras_test) == {"test_accuracy", "accuracy_std", "test_loss"}
    details = json.loads((small_repo / "reports/test_keras.json").read_text())
    assert list(details["test_accuracy"]) == ["0", "1"] and len(details["per_class_accuracy"]) == 10
    assert keras_test["test_accuracy"] == pytest.approx(
        np.mean(list(details["test_accuracy"].values())), abs=1e-6)
    assert len(json.loads((small_repo / "reports/test_scratch.json").read_text())
               ["per_class_accuracy"]) == 10
    confusion = (small_repo / "plots/confusion_keras.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 10_001
    final = (small_repo / "plots/final_history.csv").read_text().splitlines()
    assert final[0] == "epoch,train_loss,val_loss" and len(final) == 1 + report["best"]["epochs"]
    assert (small_repo / "plots/search_results.png").stat().st_size > 5_000


def test_landscape_writes_metrics_grids_and_images(small_repo):
    land = json.loads((small_repo / "metrics/landscape.json").read_text())
    assert set(land) == {"plane_variance", "loss_min"}
    report = json.loads((small_repo / "reports/landscape.json").read_text())
    pc1, pc2 = report["explained_variance"]
    assert 0 < pc2 <= pc1 and pc1 + pc2 <= 1
    assert land["plane_variance"] == pytest.approx(pc1 + pc2, abs=1e-5)
    assert {"explained_variance", "loss_min", "loss_max", "trajectory_gap",
            "off_plane"} <= set(report)
    assert 0 < report["loss_min"] == land["loss_min"] < report["loss_max"]
    with np.load(small_repo / "models/landscape/landscape.npz") as f:
        assert f["loss"].shape == (12, 12) and f["coords"].shape == (3, 2)
    for name in ("landscape_surface.png", "landscape_contour.png"):
        assert (small_repo / "plots" / name).stat().st_size > 10_000


def test_metrics_show_is_a_short_readable_table(small_repo):
    """About 15 headline numbers in at most 200 columns; the gradient check is not 0.0."""
    out = run_dvc(small_repo, "metrics", "show").stdout
    lines = out.splitlines()
    assert max(map(len, lines)) <= 200, out
    numbers = sum(cell != "-" for line in lines[1:] for cell in line.split()[1:])
    assert 13 <= numbers <= 17, out
    row = next(ln for ln in lines if ln.startswith("metrics/gradcheck.json")).split()
    assert float(row[lines[0].split().index("log10_grad_error")]) < -6, row  # log10 of ~1e-8


def test_no_tensorflow_log_line_reaches_the_terminal(small_repo):
    """Every stage forced once: TensorFlow's C++ lines (I0000, W0000, E0000) go to logs/."""
    result = run_dvc(small_repo, "repro", "--force", "search@1-8-0.05-256-0.001-relu",
                     "evaluate_keras")
    output = result.stdout + result.stderr
    assert "search: layers1-units8" in output and "evaluate_keras: " in output
    assert not [ln for ln in output.splitlines() if ln[:1] in "EIWF" and ln[1:5].isdigit()], output
    assert "oneDNN custom operations" in (small_repo / "logs/evaluate_keras.log").read_text()


def test_a_scratch_change_runs_no_keras_stage(small_repo):
    """As `dvc exp run -S scratch.epochs=3`: only what depends on the scratch model reruns."""
    override(small_repo, scratch={"epochs": 3})
    try:
        out = run_dvc(small_repo, "repro").stdout
    finally:
        override(small_repo, scratch={"epochs": 2})
    ran = sorted(line.split("'")[1] for line in out.splitlines()
                 if line.startswith("Running stage"))
    assert ran == ["evaluate_scratch", "landscape", "train_scratch"], out
    run_dvc(small_repo, "repro")  # back to the fixture's outputs (from the run-cache)


def test_second_repro_changes_nothing(small_repo):
    out = run_dvc(small_repo, "repro").stdout
    assert "Running stage" not in out
    assert "up to date" in out


def test_adding_a_grid_value_runs_only_the_new_items(small_repo):
    override(small_repo, search={"batch_size": [256, 512]})
    try:
        out = run_dvc(small_repo, "repro", "select").stdout
        ran = sorted(line for line in out.splitlines() if line.startswith("Running stage"))
        assert ran == ["Running stage 'search@1-8-0.05-512-0.001-relu':",
                       "Running stage 'search@2-8-0.05-512-0.001-relu':",
                       "Running stage 'select':"]
        assert json.loads((small_repo / "reports/search.json").read_text())["configs"] == 8
    finally:
        override(small_repo, search={"batch_size": [256]})
    out = run_dvc(small_repo, "repro", "select")
    assert "also holds 2 item(s) not in the grid" in out.stderr
    for stale in (small_repo / "models/search").glob("*batch512*"):
        shutil.rmtree(stale)
    for stale in (small_repo / "plots/search").glob("*batch512*"):
        stale.unlink()


def test_invalid_param_stops_with_the_key_and_no_output(small_repo):
    override(small_repo, scratch={"learning_rate": 0})
    try:
        result = run_dvc(small_repo, "repro", "train_scratch", check=False)
        assert result.returncode != 0
        assert "scratch.learning_rate: expected a value > 0, got 0" in result.stderr + result.stdout
        assert not (small_repo / "models/scratch").exists()
    finally:
        override(small_repo, scratch={"learning_rate": 0.1})


def test_landscape_samples_beyond_the_split_stop_with_the_key(small_repo):
    override(small_repo, landscape={"samples": 10 ** 6})
    try:
        result = run_dvc(small_repo, "repro", "landscape", check=False)
        assert result.returncode != 0
        assert ("landscape.samples: expected at most the 4000 training images, got 1000000"
                in result.stderr + result.stdout)
        assert not (small_repo / "metrics/landscape.json").exists()
    finally:
        override(small_repo, landscape={"samples": 300})


def test_corrupt_source_fails_fetch_and_leaves_no_raw(small_repo, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (bad / name).write_bytes(b"\x00\x00\x08\x01" + bytes(8))
    override(small_repo, fetch={"source_dir": str(bad)})
    try:
        result = run_dvc(small_repo, "repro", "fetch", check=False)
        assert result.returncode != 0
        assert "train-images-idx3-ubyte (from" in result.stderr
        assert "SHA-256 mismatch" in result.stderr
        assert not (small_repo / "data/raw").exists()
    finally:
        override(small_repo, fetch={"source_dir": None})
    run_dvc(small_repo, "repro", "fetch")  # good params recover


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


def committed(repo):
    """Bring the repo up to date with its params and commit everything git tracks."""
    run_dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "run")
    return repo


HOSTILE = {  # an outer environment asking for other code paths than the numeric profile's
    "OPENBLAS_CORETYPE": "SkylakeX", "OPENBLAS_NUM_THREADS": "2", "NPY_DISABLE_CPU_FEATURES": "",
    "ONEDNN_MAX_CPU_ISA": "ALL", "TF_NUM_INTRAOP_THREADS": "2", "OMP_NUM_THREADS": "2",
}


def test_every_stage_rerun_gives_the_same_bytes(small_repo):
    """Forced rerun of every stage, under an environment that asks for other kernels and thread
    counts: dvc.lock, which holds the hash of every output, comes out the same."""
    committed(small_repo)
    before = (small_repo / "dvc.lock").read_text()
    run_dvc(small_repo, "repro", "--force", env=HOSTILE)
    assert (small_repo / "dvc.lock").read_text() == before
    assert git(small_repo, "status", "--porcelain") == ""


def test_second_clone_sharing_the_cache_runs_no_stage(small_repo, tmp_path):
    committed(small_repo)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(small_repo), str(clone))
    run_dvc(clone, "cache", "dir", "--local", str(small_repo / ".dvc" / "cache"))
    out = run_dvc(clone, "repro").stdout
    assert "Running stage" not in out, out
    assert (clone / "models/scratch/trajectory.npz").is_file()
    assert git(clone, "status", "--porcelain") == ""
    assert "up to date" in run_dvc(clone, "status").stdout


def test_a_stage_runs_the_library_of_the_directory_it_runs_in(small_repo, tmp_path):
    """As in `dvc exp run --temp`: the stage runs in a copy whose library differs from the one
    that is importable from elsewhere (here the workspace, on PYTHONPATH)."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(committed(small_repo)), str(clone))
    run_dvc(clone, "cache", "dir", "--local", str(small_repo / ".dvc" / "cache"))
    stage_py = clone / "fmnist_mlp" / "stage.py"
    stage_py.write_text(stage_py.read_text().replace(
        'print(f"{name}: {message}"', 'print(f"{name} (the copy\'s library): {message}"'))
    result = run_dvc(clone, "repro", "gradcheck", env={"PYTHONPATH": str(ROOT)})
    assert "gradcheck (the copy's library): check_grad" in result.stderr + result.stdout


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


FAILED = 255  # `dvc repro`'s exit status when a stage fails (the stage itself exits 1)
BAD_PARAMS = [  # (id, params change, stage, exit code, line shown, output that must not exist)
    ("all items diverged", dict(search={"learning_rate": [1e30]}), "select", FAILED,
     "every item diverged, nothing to select", "models/best"),
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
    ("exploding loss, still finite", dict(search={"learning_rate": [100.0]}), "select", FAILED,
     "every item diverged, nothing to select", "models/best"),
    ("a grid at chance level", dict(search={"learning_rate": [2.0]}), "select", FAILED,
     "every configuration is no better than chance", "models/best"),
    ("unknown activation", dict(scratch={"activation": "gelu"}), "train_scratch", FAILED,
     "scratch.activation: unknown activation 'gelu' (known: relu, sigmoid, tanh)",
     "models/scratch"),
]


@pytest.mark.parametrize("change, target, code, line, absent",
                         [case[1:] for case in BAD_PARAMS], ids=[case[0] for case in BAD_PARAMS])
def test_bad_params_give_one_line_and_no_output_then_good_params_recover(
        small_repo, change, target, code, line, absent):
    original = set_params(small_repo, **change)
    try:
        assert_one_line(run_dvc(small_repo, "repro", target, check=False), code, line)
        assert not (small_repo / absent).exists()
    finally:
        (small_repo / "params.yaml").write_text(original)
    run_dvc(small_repo, "repro", target)
    assert (small_repo / absent).exists()


def test_an_oversize_search_item_is_refused_before_training(small_repo):
    item = "models/search/layers1-units1000000000-lr0.05-batch256-l2_0.001-relu"
    original = set_params(small_repo, search={"hidden_units": [1_000_000_000]})
    try:
        assert_one_line(run_dvc(small_repo, "repro", "select", check=False), FAILED,
                        "search.hidden_units 1000000000 x hidden_layers 1: needs about")
        assert not (small_repo / item).exists()
    finally:
        (small_repo / "params.yaml").write_text(original)
    run_dvc(small_repo, "repro", "select")
    assert "up to date" in run_dvc(small_repo, "status").stdout


ACCEPTED = [  # params DVC reads as valid, which the stages must accept too
    ("exponent notation", dict(text_edit=lambda t: t.replace("learning_rate: 0.1",
                                                             "learning_rate: 1e-1", 1)),
     "train_scratch", "train_scratch: val accuracy"),
    ("whole float epochs", dict(scratch={"epochs": 2.0}), "train_scratch",
     "train_scratch: val accuracy"),
    ("whole number in a float axis", dict(search={"l2": [0]}), "select", "best of 4"),
    ("a diverged item", dict(search={"learning_rate": [0.05, 1e30]}), "select",
     "left out 2 item(s) with a diverged seed"),
    ("a dead model", dict(scratch={"learning_rate": 100.0}), "train_scratch",
     "is no better than chance (1/10)"),
    ("configurations at chance level", dict(search={"learning_rate": [0.05, 2.0]}), "select",
     "left out 4 configuration(s) no better than chance (1/10)"),
]


@pytest.mark.parametrize("change, target, line", [case[1:] for case in ACCEPTED],
                         ids=[case[0] for case in ACCEPTED])
def test_params_dvc_accepts_run(small_repo, change, target, line):
    original = set_params(small_repo, **change)
    try:
        assert_one_line(run_dvc(small_repo, "repro", "--force", target, check=False), 0, line)
        text = "".join(p.read_text() for p in (small_repo / "metrics").glob("*.json"))
        assert "NaN" not in text and "Infinity" not in text
    finally:
        (small_repo / "params.yaml").write_text(original)


def stage_command(repo, *argv, env=None, **kwargs):
    return subprocess.Popen([sys.executable, "-m", *argv], cwd=repo, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_stage_scripts_report_misuse_and_broken_inputs_in_one_line(small_repo, tmp_path):
    wrong = stage_command(small_repo, "stages.prepare", "data/raw")
    assert_one_line(subprocess.CompletedProcess([], wrong.wait(), *wrong.communicate()), 2,
                    "prepare: error: expected 2 arguments, got 1. Usage: python -m stages.prepare")
    broken = tmp_path / "broken"
    shutil.copytree(small_repo / "models/best", broken)
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
        process = stage_command(small_repo, *argv)
        assert_one_line(subprocess.CompletedProcess([], process.wait(), *process.communicate()),
                        1, line)
        assert not (tmp_path / "m").exists()


def test_ctrl_c_stops_a_stage_with_one_line_and_no_output(small_repo, tmp_path):
    out = tmp_path / "scratch"
    original = set_params(small_repo, scratch={"epochs": 10_000})  # still training at 4 s
    try:
        process = stage_command(small_repo, "stages.train_scratch", "data/prepared", str(out),
                                str(tmp_path / "m.json"), str(tmp_path / "h.csv"))
        time.sleep(4)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        (small_repo / "params.yaml").write_text(original)
    assert_one_line(subprocess.CompletedProcess([], code, *process.communicate()), 130,
                    "train_scratch: interrupted")
    assert not out.exists() and not (tmp_path / "m.json").exists()


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


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM, reason="no chromium (make test installs Debian's)")
def test_plots_page_renders_every_plot_offline(small_repo, tmp_path):
    out = tmp_path / "page"
    run_dvc(small_repo, "plots", "show", "-o", str(out))
    html = (out / "index.html").read_text()
    assert not re.findall(r"<script[^>]+src=", html), "the page loads a script from elsewhere"
    ids = re.findall(r"vegaEmbed\('#([\w-]+)'", html)
    expected = {"scratch_loss", "scratch_accuracy", "final_history", "search_items",
                "plots_confusion_scratch_csv", "plots_confusion_keras_csv",
                *(f"plots_search_layers{n}-units8-lr0_05-batch256-l2_0_001-relu_csv"
                  for n in (1, 2))}
    assert expected <= set(ids), ids  # and the curves of items earlier tests left behind
    dom = rendered_dom(out / "index.html")
    starts = [dom.find(f'<div id="{div_id}"') for div_id in ids]  # vega-embed fills each div
    assert -1 not in starts, dict(zip(ids, starts))
    for div_id, start, end in zip(ids, starts, [*starts[1:], len(dom)]):
        tag, body = dom[start:end].split(">", 1)
        assert 'data-rendered="yes"' in tag, f"{div_id}: not drawn ({tag})"
        if div_id in expected:  # a diverged item left behind has an empty curve
            assert body.count('role="graphics-symbol"') > 0, f"{div_id}: no marks drawn"
    images = re.findall(r'<img src="(static/[^"]+)"', html)
    assert len(images) == 3 and all((out / src).is_file() for src in images), images


UNRELATED_EDITS = {  # a file far from Keras -> a line appended to it
    "fmnist_mlp/selection/ranking.py": "\n# the selection rule, edited\n",
    "fmnist_mlp/core/stats.py": "\n# the statistics, edited\n",
    "fmnist_mlp/numpy_mlp/scratch.py": "\n# another section's params checks (scratch), edited\n",
    "fmnist_mlp/numpy_mlp/landscape.py": "\n# another section's params checks (landscape), edited\n",
    "fmnist_mlp/numpy_mlp/figures.py": "\n# a figure, edited\n",
    "fmnist_mlp/numpy_mlp/mlp.py": "\n# the from-scratch numpy maths, edited\n",
}


def test_an_edit_far_from_keras_leaves_every_search_item_up_to_date(small_repo):
    originals = {name: (small_repo / name).read_text() for name in UNRELATED_EDITS}
    try:
        for name, line in UNRELATED_EDITS.items():
            (small_repo / name).write_text(originals[name] + line)
        status = json.loads(run_dvc(small_repo, "status", "--json").stdout)
    finally:
        for name, text in originals.items():
            (small_repo / name).write_text(text)
    assert not [s for s in status if s.startswith("search@")], status
    assert {"select", "train_scratch", "landscape"} <= set(status)  # the edits were seen


def repro_command(repo, *args, **popen):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.Popen([sys.executable, "-m", "fmnist_mlp.engine.repro", *args], cwd=repo, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def test_parallel_repro_writes_what_a_serial_repro_writes(small_repo, tmp_path):
    """Another copy with its own cache: the items on 2 workers, then dvc repro; dvc.lock and
    every output are the serial fixture's, byte for byte."""
    repo = copy_project(tmp_path / "parallel")
    override(repo, **SMALL)
    process = repro_command(repo, "--jobs", "2")
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, out + err
    assert "2 search items on 2 workers" in out, out
    assert "2 of 2 items done (2 trained, 0 restored from the run-cache)" in out, out
    assert "Running stage 'search@" not in out  # restored from the run-cache, not retrained
    # the serial fixture's dvc.lock, less the stages dvc.yaml no longer defines (the committed
    # run's items), which make repro removes and `dvc repro` keeps
    serial, _ = prune_lock((small_repo.parent / "fixture.lock").read_text(),
                           set(run_dvc(repo, "stage", "list", "--name-only").stdout.split()))
    assert (repo / "dvc.lock").read_text() == serial
    assert not (repo / ".dvc/tmp/repro").exists()
    assert "up to date" in run_dvc(repo, "status").stdout


def test_ctrl_c_stops_every_worker_and_records_no_unfinished_item(small_repo):
    original = set_params(small_repo, search={"epochs": [300], "batch_size": [64]})
    try:
        process = repro_command(small_repo, "--jobs", "2", start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(
                (small_repo / ".dvc/tmp/repro").glob("w*/models/search/*")):
            time.sleep(0.5)  # until the workers train
        time.sleep(2)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's process group
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, out + err
        assert "repro: interrupted; every worker stopped" in err
        assert "Traceback" not in err
        left = subprocess.run(["pgrep", "-f", "dvc repro --single-item"], capture_output=True,
                              text=True).stdout
        assert left == "", left
        assert not (small_repo / ".dvc/tmp/repro").exists()
        status = json.loads(run_dvc(small_repo, "status", "--json").stdout)
        assert sum(s.startswith("search@") for s in status) == 2  # nothing was recorded
    finally:
        (small_repo / "params.yaml").write_text(original)


def test_tanh_networks_run_end_to_end(small_repo):
    """The activation is one param per model: a tanh scratch model (gradient check, SGD,
    evaluation, landscape) and tanh search items, through DVC; back to relu from the run-cache."""
    original = set_params(small_repo, scratch={"activation": "tanh"},
                          search={"activation": ["tanh"]})
    try:
        result = run_dvc(small_repo, "repro")
        out = result.stdout + result.stderr  # the stages' own lines are on stderr
        assert "parameters (tanh has no kinks)" in out, out
        assert "784-10-10-10-10 tanh, L2 on every kernel" in out
        with np.load(small_repo / "models/scratch/model.npz") as f:
            assert json.loads(str(f["spec"]))["activation"] == "tanh"
        items = sorted(p.name for p in (small_repo / "models/search").iterdir())
        assert "layers1-units8-lr0.05-batch256-l2_0.001-tanh" in items
        config = json.loads((small_repo / "models/best/config.json").read_text())
        assert config["activation"] == "tanh"
        assert json.loads((small_repo / "reports/gradcheck.json").read_text())["kinks"] == 0
        assert "up to date" in run_dvc(small_repo, "status").stdout
    finally:
        (small_repo / "params.yaml").write_text(original)
        for stale in [*(small_repo / "models/search").glob("*-tanh"),
                      *(small_repo / "plots/search").glob("*-tanh.csv")]:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    out = run_dvc(small_repo, "repro").stdout
    # every relu output back from the run-cache (select reruns if other tests left items)
    assert not re.search(r"Running stage '(?!select')", out), out
