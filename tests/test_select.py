"""The select stage's work (fmnist_mlp/selection/select.py; stages/select_best.py is its command
line) in-process, on fake items whose data tell the right rule from a wrong one: every output's
every field, the ranking figure it draws, no output left by a failure, ties and diverged items
named, the winning epoch's models exported, the by-seed paired test reported, the verdict in
words, configurations at chance and items outside the grid."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import EXAMPLES, LISTED_OTHERWISE, OTHER, SEEDS, WINNER, fake_item, trial_of
from scipy import stats

from fmnist_mlp.core.errors import DataError, StudyError
from fmnist_mlp.grid.search import Trial, checkpoint_name, write_item_metrics
from fmnist_mlp.selection import figure
from fmnist_mlp.selection.select import alive, headline, select, verdict, warn_stale

SCORES = {30: [0.80, 0.81, 0.79], 40: [0.86, 0.88, 0.87], 50: [0.84, 0.85, 0.85]}
OUTPUTS = ("metrics.json", "report.json", "results.csv", "results.png", "out/models/best",
           "overlay.csv", "effects.json", "effects.csv")
SELECT = {"alpha": 0.05, "margin": 0.005, "mcb_draws": 20000, "mcb_seed": 0}  # params.yaml's


def write_item(root: Path, units: int, scores: dict[int, list[float]], order=SEEDS) -> Path:
    """An item directory as the search stage leaves it: metrics.json with ``scores`` ({epoch:
    val accuracy per seed of SEEDS}) listing the seeds in ``order``, and one checkpoint per
    seed and epoch whose bytes name them; its curves file beside."""
    item = root / "models/search" / trial_of(units).name
    item.mkdir(parents=True)
    runs = {seed: {e: {"val_correct": round(acc[SEEDS.index(seed)] * EXAMPLES),
                       "val_loss": 0.4 - e / 1000} for e, acc in scores.items()}
            for seed in order}
    write_item_metrics(item / "metrics.json", trial_of(units), EXAMPLES, runs)
    for seed in SEEDS:
        for epoch in scores:
            (item / checkpoint_name(seed, epoch)).write_bytes(
                f"{trial_of(units).name} seed {seed} epoch {epoch}".encode())
    curves = root / "plots/search"
    curves.mkdir(parents=True, exist_ok=True)
    (curves / f"{trial_of(units).name}.csv").write_text(
        "epoch,train_accuracy,val_accuracy\n" + "".join(
            f"{e},0.5,{sum(acc) / len(acc):.4f}\n" for e, acc in sorted(scores.items())))
    return item


def write_params(root: Path, units: list[int], epochs: list[int]) -> None:
    """params.yaml of a grid of 3 layers of ``units`` over SEEDS, checkpointed at ``epochs``."""
    (root / "params.yaml").write_text(yaml.safe_dump({"search": {
        "hidden_layers": [3], "hidden_units": units, "learning_rate": [0.05],
        "batch_size": [64], "l2": [0.001], "activation": ["relu"], "epochs": epochs,
        "seeds": list(SEEDS)}, "select": SELECT}))


@pytest.fixture
def three_items(tmp_path, monkeypatch):
    """Three fake items (3 layers of 30, 40 or 50 units) whose mean accuracies over 3 seeds rank
    40 > 50 > 30, their curves and params.yaml, in ``tmp_path``, the working directory."""
    trials = [Trial(3, units, 0.05, 64, 0.001, "relu") for units in (30, 40, 50)]
    models, curves = tmp_path / "models/search", tmp_path / "plots/search"
    curves.mkdir(parents=True)
    for trial in trials:
        item = fake_item(models, trial, {40: [(s, 0.4) for s in SCORES[trial.hidden_units]]},
                         seeds=(0, 1, 2))
        for seed in (0, 1, 2):
            (item / f"model_seed{seed}_e40.keras").write_bytes(f"model {seed}".encode())
        (curves / f"{trial.name}.csv").write_text("epoch,train_accuracy,val_accuracy\n"
                                                  f"1,0.5,0.{trial.hidden_units}\n")
    write_params(tmp_path, [30, 40, 50], [40])
    monkeypatch.chdir(tmp_path)  # the stage reads params.yaml where it runs, as under dvc
    return tmp_path


def run_select(best: str = OUTPUTS[4]) -> None:
    """select over models/search and plots/search of the working directory, into OUTPUTS there
    (the best configuration's models into ``best``)."""
    select(Path("models/search"), Path("plots/search"),
           *map(Path, (*OUTPUTS[:4], best, *OUTPUTS[5:])))


def test_the_select_stage_ranks_three_known_configurations(three_items):
    """select picks 40 units, names 50 the runner-up (not the last, 30), and writes every
    output's every field: the report, the metrics, the table, the overlay and the best model's
    files (a key, a value, a seed or a file mixed up changes one of them)."""
    run_select()
    p = stats.ttest_rel(SCORES[40], SCORES[50]).pvalue  # 0.0198: best against runner-up
    p30 = stats.ttest_rel(SCORES[40], SCORES[30]).pvalue
    metrics = json.loads(Path("metrics.json").read_text())
    assert metrics.keys() == {"val_accuracy", "accuracy_std", "val_loss", "seed0_val_accuracy",
                              "possibly_best", "top_effect", "top_effect_ci"}
    # the model (units + seed blocks, one checkpoint): its error mean square by hand, from the
    # two-way table's residuals, 4 degrees of freedom; units 40 against 30: 0.07 +- t sqrt(2 MS/3)
    table = np.array([SCORES[30], SCORES[40], SCORES[50]])  # (units, seed)
    resid = table - table.mean(1, keepdims=True) - table.mean(0, keepdims=True) + table.mean()
    half = stats.t.ppf(0.975, 4) * math.sqrt(2 * (resid ** 2).sum() / 4 / 3)
    assert metrics["possibly_best"] == 1  # 50 trails 40 by 0.0233, more than d se = 0.0142
    assert (metrics["top_effect"], metrics["top_effect_ci"]) == pytest.approx((0.07, half),
                                                                             rel=1e-5)
    assert metrics["val_accuracy"] == pytest.approx(0.87)
    assert metrics["accuracy_std"] == pytest.approx(np.std(SCORES[40], ddof=1), rel=1e-5)
    assert metrics["val_loss"] == pytest.approx(0.4)
    assert math.isclose(json.loads(Path("report.json").read_text())["p_runner_up"], p,
                        rel_tol=1e-5)
    assert metrics["seed0_val_accuracy"] == pytest.approx(0.86)  # seed 0: 40 units best too
    report = json.loads(Path("report.json").read_text())
    assert report["best"] == {
        "hidden_layers": 3, "hidden_units": 40, "learning_rate": 0.05, "batch_size": 64,
        "l2": 0.001, "activation": "relu", "epochs": 40,
        "item": "layers3-units40-lr0.05-batch64-l2_0.001-relu", "label": "units 40",
        "val_accuracy_seeds": pytest.approx(SCORES[40]), "ci95": pytest.approx(
            stats.t.ppf(0.975, 2) * np.std(SCORES[40], ddof=1) / math.sqrt(3), rel=1e-5)}
    assert report["runner_up"] == {"label": "units 50", "val_accuracy": pytest.approx(0.84667,
                                   rel=1e-4), "std": pytest.approx(np.std(SCORES[50], ddof=1),
                                   rel=1e-5), "p_vs_best": pytest.approx(p, rel=1e-5)}
    assert report["verdict"] == ("1 of 3 configuration(s) could be the best (Hsu's MCB, 95% "
                                 "simultaneous): units 40")
    assert report["possibly_best"] == ["units 40"]
    assert report["paired_runner_up"] == (f"distinguishable from the runner-up (units 50): "
                                          f"paired t-test over 3 seeds, p = {p:.3g}, alpha 0.05")
    assert report["not_distinguishable_from_best"] == []
    assert report["single_seed"] == {"seed": 0, "label": "units 40",
                                     "val_accuracy": pytest.approx(0.86)}
    assert {k: report[k] for k in ("seeds", "alpha", "configs", "items", "diverged_items")} == {
        "seeds": [0, 1, 2], "alpha": 0.05, "configs": 3, "items": 3, "diverged_items": 0}
    rows = Path("results.csv").read_text().splitlines()
    assert rows[0] == ("label,hidden_layers,hidden_units,learning_rate,batch_size,l2,activation,"
                       "epochs,val_accuracy,std,ci95,val_loss,possibly_best,mcb_low,mcb_high,"
                       "vs_best_high,equivalence,p_vs_best,distinguishable,val_accuracy_seeds")
    assert [r.split(",")[0] for r in rows[1:]] == ["units 30", "units 40", "units 50"]  # grid
    assert rows[1].endswith(f",{p30:.6g},True,0.8 0.81 0.79")
    assert rows[2].endswith(",1.0,False,0.86 0.88 0.87")  # the best against itself
    best = Path(OUTPUTS[4])
    assert sorted(f.name for f in best.iterdir()) == [
        "config.json", "history.csv", "model_seed0.keras", "model_seed1.keras",
        "model_seed2.keras"]
    assert [(best / f"model_seed{s}.keras").read_bytes() for s in (0, 1, 2)] == [
        b"model 0", b"model 1", b"model 2"]
    assert (best / "history.csv").read_text().endswith("1,0.5,0.40\n")
    assert json.loads((best / "config.json").read_text()) == {
        "hidden_layers": 3, "hidden_units": 40, "learning_rate": 0.05, "batch_size": 64,
        "l2": 0.001, "activation": "relu", "epochs": 40, "seeds": [0, 1, 2]}
    assert Path("overlay.csv").read_text().splitlines() == [
        "epoch,item,rank,val_accuracy", "1,units 40,1,0.4", "1,units 50,2,0.5",
        "1,units 30,3,0.3"]
    assert report["equivalence"]["margin"] == 0.005
    effects = Path("effects.csv").read_text().splitlines()
    assert effects[0] == "effect,axis,estimate,low,high,p"
    assert [line.split(",")[:2] for line in effects[1:]] == [
        ["units 40 vs units 30", "hidden_units"], ["units 50 vs units 30", "hidden_units"]]


def test_the_select_stage_draws_the_ranking_it_writes(three_items, monkeypatch):
    """The ranking figure gets the configurations best first, their intervals, which are tied
    with the best, alpha and the single-run pick."""
    drawn = {}
    monkeypatch.setattr(figure, "ranking", lambda path, labels, values, xlabel, title, **kw:
                        drawn.update(path=path, labels=labels, values=values, xlabel=xlabel,
                                     title=title, **kw))
    run_select()
    report = json.loads(Path("report.json").read_text())
    assert drawn["path"] == Path("results.png")
    assert drawn["labels"] == ["units 40", "units 50", "units 30"]
    assert drawn["values"] == pytest.approx([0.87, 0.84667, 0.8], rel=1e-4)
    effects = json.loads(Path("effects.json").read_text())["mcb"]
    # a configuration mean's interval: half the two items' difference variance, on its df (4)
    half = stats.t.ppf(0.975, 4) * effects["se_two_items"] / math.sqrt(2)
    assert drawn["errors"] == pytest.approx([half] * 3, rel=1e-5) and report["best"]["ci95"] > half
    assert drawn["possibly_best"] == [True, False, False]
    assert drawn["alpha"] == 0.05
    assert drawn["marked"] == (0, "the single-run protocol's pick (seed 0)")
    assert drawn["xlabel"] == ("validation accuracy, mean over the seeds with its 95% interval\n"
                               "given these seeds (their shared effect moves every bar alike)")
    assert drawn["title"] == ("Keras grid search: 3 configurations x 3 seeds, best on top\n"
                              "layers 3, lr 0.05, batch 64, l2 0.001, relu, epochs 40 in all")


def test_a_failed_select_leaves_no_output_and_a_rerun_writes_the_same(three_items, monkeypatch):
    """The figure failing last: every output removed, none partial; run twice, the same bytes."""
    def fail(path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device", str(path))

    run_select()
    first = {name: Path(name).read_bytes() for name in OUTPUTS if Path(name).is_file()}
    run_select()  # over its own outputs, as a user rerunning it by hand
    assert {name: Path(name).read_bytes() for name in first} == first
    monkeypatch.setattr(figure, "ranking", fail)
    with pytest.raises(StudyError, match="results.png: No space left on device"):
        run_select()
    assert [name for name in OUTPUTS if Path(name).exists()] == []


def test_select_names_the_ties_and_the_diverged_items(three_items, capsys):
    """50 units within noise of 40 (not distinguishable), a fourth item whose seed 1 diverged:
    left out and named, counted in the report."""
    near = {0: [0.87, 0.86, 0.86], 1: [0.4] * 3}
    runs = {seed: {40: {"val_correct": round(near[0][seed] * 1000), "val_loss": 0.4}}
            for seed in (0, 1, 2)}
    write_item_metrics(Path(f"models/search/{Trial(3, 50, 0.05, 64, 0.001, 'relu').name}"
                            "/metrics.json"), Trial(3, 50, 0.05, 64, 0.001, "relu"), 1000, runs)
    sick = Trial(3, 35, 0.05, 64, 0.001, "relu")  # in the middle of the grid: 30, 35, 40, 50
    fake_item(Path("models/search"), sick, {40: [(0.5, 0.4)] * 3}, seeds=(0, 1, 2))
    write_item_metrics(Path(f"models/search/{sick.name}/metrics.json"), sick, 1000,
                       {0: runs[0], 1: {"diverged": {"epoch": 3, "loss": "nan"}}, 2: runs[2]})
    Path(f"plots/search/{sick.name}.csv").write_text("epoch,val_accuracy\n1,0.1\n")
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["search"]["hidden_units"] = [30, 35, 40, 50]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    run_select()
    report = json.loads(Path("report.json").read_text())
    assert report["not_distinguishable_from_best"] == ["units 50"]
    assert (report["items"], report["diverged_items"], report["configs"]) == (4, 1, 3)
    assert report["paired_runner_up"].startswith("not distinguishable from the runner-up "
                                                 "(units 50)")
    assert (f"left out 1 item(s) with a diverged seed: {sick.name} (seed 1: loss nan at epoch "
            f"3)") in capsys.readouterr().err


def test_a_grid_of_one_configuration_has_no_runner_up(three_items):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["search"]["hidden_units"] = [40]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    run_select()
    assert json.loads(Path("report.json").read_text())["p_runner_up"] == 1.0
    report = json.loads(Path("report.json").read_text())
    assert report["runner_up"] is None and report["paired_runner_up"] == "the only configuration"
    assert report["verdict"] == ("1 of 1 configuration(s) could be the best (Hsu's MCB, 95% "
                                 "simultaneous): the only configuration")


def test_the_exported_models_are_the_winning_epochs_not_the_last(tmp_path, monkeypatch):
    """Two items checkpointed at 20 and 40 epochs; the best configuration is 40 units at 20
    epochs (its 40-epoch checkpoints are worse): models/best holds each seed's epoch-20 model of
    that item, byte for byte, and config.json says 20 (max(search.epochs) would export the
    epoch-40 files, another item's or the same item's)."""
    write_item(tmp_path, 30, {20: [0.85, 0.84, 0.86], 40: [0.86, 0.85, 0.87]})
    item = write_item(tmp_path, 40, {20: [0.89, 0.88, 0.90], 40: [0.87, 0.86, 0.88]})
    write_params(tmp_path, [30, 40], [20, 40])
    monkeypatch.chdir(tmp_path)  # the stage reads params.yaml where it runs, as under dvc
    run_select(best="models/best")
    best = tmp_path / "models/best"
    for seed in SEEDS:
        assert (best / f"model_seed{seed}.keras").read_bytes() == \
            (item / checkpoint_name(seed, 20)).read_bytes()
    config = json.loads((best / "config.json").read_text())
    assert (config["hidden_units"], config["epochs"]) == (40, 20)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["best"]["label"] == "units 40, epochs 20"
    assert report["runner_up"]["label"] == "units 40, epochs 40"


@pytest.mark.parametrize("order", [SEEDS, LISTED_OTHERWISE])
def test_the_select_stage_reports_the_by_seed_p_value(tmp_path, monkeypatch, order):
    """Through the stage's outputs: the report's p_runner_up and p_vs_best are the by-seed
    paired test's, also when the runner-up's metrics.json lists its seeds in another order than
    the winner's."""
    write_item(tmp_path, 40, {40: WINNER})
    write_item(tmp_path, 50, {40: OTHER}, order=order)
    write_params(tmp_path, [40, 50], [40])
    monkeypatch.chdir(tmp_path)
    run_select(best="models/best")
    p = stats.ttest_rel(WINNER, OTHER).pvalue
    report = json.loads(Path("report.json").read_text())
    assert report["p_runner_up"] == pytest.approx(p, rel=1e-4)
    assert report["runner_up"]["p_vs_best"] == pytest.approx(p, rel=1e-4)
    assert report["best"]["val_accuracy_seeds"] == pytest.approx(WINNER)


@pytest.mark.parametrize("runner_up, seeds, said", [
    (None, 3, "the only configuration"),
    ({"label": "b", "distinguishable": True, "p_vs_best": 0.01}, 1,
     "one seed: no test; rerun with more search.seeds"),
    ({"label": "b", "distinguishable": True, "p_vs_best": 0.01}, 2,
     "distinguishable from the runner-up (b): paired t-test over 2 seeds, p = 0.01, alpha 0.05"),
    ({"label": "b", "distinguishable": False, "p_vs_best": 0.2}, 3,
     "not distinguishable from the runner-up (b): paired t-test over 3 seeds, p = 0.2, "
     "alpha 0.05"),
])
def test_the_verdict_in_words(runner_up, seeds, said):
    assert verdict(runner_up, 0.05, seeds) == said


def test_configurations_at_chance_are_left_out_and_all_at_chance_is_an_error(capsys):
    rows = [{"item": f"i{k}", "epochs": 5, "val_accuracy": acc, "val_examples": 1000}
            for k, acc in enumerate((0.85, 0.1, 0.5))]
    assert alive(rows) == [rows[0], rows[2]]
    assert "left out 1 configuration(s) no better than chance (1/10): i1 at 5 epochs" in \
        capsys.readouterr().err
    assert alive(rows[::2]) == rows[::2] and capsys.readouterr().err == ""
    with pytest.raises(DataError, match="every configuration is no better than chance"):
        alive([rows[1]])


def test_items_outside_the_grid_are_named(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "old").mkdir()
    warn_stale(tmp_path, {"a"})
    assert f"{tmp_path} also holds 1 item(s) not in the grid (old)" in capsys.readouterr().err
    warn_stale(tmp_path, {"a", "old"})
    warn_stale(tmp_path / "missing", {"a"})
    assert capsys.readouterr().err == ""


# rank order, not alphabetical: a list sorted again, or taken from the wrong end, reads otherwise
RANKED = ("units 40", "units 30", "layers 5", "batch 128", "epochs 40", "units 50", "layers 3",
          "batch 64")


@pytest.mark.parametrize("possibly_best, configs, said", [
    (8, 8, ": units 40; units 30; layers 5; batch 128; epochs 40; units 50 and 2 more"),
    (6, 6, ": units 40; units 30; layers 5; batch 128; epochs 40; units 50"),  # 6: no "more"
    (2, 4, ": units 40; units 30"),  # as many in as out: those in
    (4, 5, "; ruled out: epochs 40"),  # fewer out: those out
    (3, 6, ": units 40; units 30; layers 5"),
    (5, 8, "; ruled out: units 50; layers 3; batch 64"),
    (0, 3, ""),  # none: no list
])
def test_the_possibly_best_set_in_words(possibly_best, configs, said):
    """Those in the set are named, or those ruled out when they are fewer, in rank order, at
    most 6 with the rest counted."""
    rows = [{"label": label} for label in RANKED[:configs]]
    found = {"possibly_best": list(RANKED[:possibly_best])}
    assert headline(found, rows, 0.05) == (
        f"{possibly_best} of {configs} configuration(s) could be the best (Hsu's MCB, 95% "
        f"simultaneous){said}")
