"""The select stage's conclusions end to end in-process (fmnist_mlp/selection/study.py through
select.select): fake items on disk, params.yaml in the working directory, every output read."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import EXAMPLES

from fmnist_mlp.grid.search import Trial, write_item_metrics
from fmnist_mlp.selection.select import select

OUTPUTS = ("metrics.json", "report.json", "results.csv", "results.png", "best", "overlay.csv",
           "effects.json", "effects.csv")


def grid(tmp_path, monkeypatch, accuracy, seeds=(0, 1, 2), epochs=(20, 40), units=(30, 40),
         batch=(64, 128), diverged=()):
    """Items of a units x batch grid whose accuracy at (units, batch, seed, epoch) is
    ``accuracy(...)``; ``diverged``: (units, batch) items whose seed 1 diverged."""
    monkeypatch.chdir(tmp_path)
    for u in units:
        for b in batch:
            trial = Trial(3, u, 0.05, b, 0.001, "relu")
            item = Path("models/search") / trial.name
            item.mkdir(parents=True)
            runs = {s: {e: {"val_correct": round(accuracy(u, b, s, e) * EXAMPLES),
                            "val_loss": 0.4} for e in epochs} for s in seeds}
            if (u, b) in diverged:
                runs[1] = {"diverged": {"epoch": 3, "loss": "nan"}}
            write_item_metrics(item / "metrics.json", trial, EXAMPLES, runs)
            for s in seeds:
                for e in epochs:
                    (item / f"model_seed{s}_e{e}.keras").write_bytes(b"m")
            Path("plots/search").mkdir(parents=True, exist_ok=True)
            (Path("plots/search") / f"{trial.name}.csv").write_text(
                "epoch,val_accuracy\n1,0.5\n")
    params = {"search": {"hidden_layers": [3], "hidden_units": list(units),
                         "learning_rate": [0.05], "batch_size": list(batch), "l2": [0.001],
                         "activation": ["relu"], "epochs": list(epochs), "seeds": list(seeds)},
              "select": {"alpha": 0.05, "margin": 0.005, "mcb_draws": 20000, "mcb_seed": 0}}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    select(Path("models/search"), Path("plots/search"), *map(Path, OUTPUTS))
    return (json.loads(Path("effects.json").read_text()),
            json.loads(Path("metrics.json").read_text()),
            json.loads(Path("report.json").read_text()))


def clear(u, b, s, e):
    """Units 40 add 0.02, 40 epochs 0.01, batch nothing; seeds shift every item alike; a little
    noise per run and checkpoint (deterministic)."""
    wobble = 0.001 * np.sin(7 * u + 3 * b + 11 * s + e)
    return 0.85 + 0.02 * (u == 40) + 0.01 * (e == 40) + 0.004 * s + wobble


def test_the_effects_chart_and_the_headline_say_what_the_grid_holds(tmp_path, monkeypatch):
    effects, metrics, report = grid(tmp_path, monkeypatch, clear)
    got = {(r["axis"], r["level"]): r for r in effects["levels"] if "effect" in r}
    assert set(got) == {("hidden_units", 40), ("batch_size", 128), ("epochs", 40)}
    assert got["hidden_units", 40]["effect"] == pytest.approx(0.02, abs=0.001)
    assert got["hidden_units", 40]["low"] > 0 and got["epochs", 40]["low"] > 0
    assert got["batch_size", 128]["low"] < 0 < got["batch_size", 128]["high"]
    assert metrics["top_effect"] == pytest.approx(got["hidden_units", 40]["effect"])
    assert metrics["top_effect_ci"] == pytest.approx(
        (got["hidden_units", 40]["high"] - got["hidden_units", 40]["low"]) / 2, abs=1e-7)
    # the best: 40 units at 40 epochs, either batch; everything at 30 units is ruled out
    assert report["possibly_best"] == ["units 40, batch 64, epochs 40",
                                       "units 40, batch 128, epochs 40"]
    assert metrics["possibly_best"] == 2
    rows = Path("effects.csv").read_text().splitlines()
    assert rows[0] == "effect,axis,estimate,low,high,p"
    assert [r.split(",")[0] for r in rows[1:]] == [
        "units 40 vs units 30", "batch 128 vs batch 64", "epochs 40 vs epochs 20"]
    seed = next(r for r in effects["anova"] if r["term"] == "seed")
    assert seed["p"] < 0.001 and effects["noise"]["seed_share"] > 0.5


def test_a_diverged_item_is_left_out_and_the_rest_still_concludes(tmp_path, monkeypatch,
                                                                 capsys):
    """One of four items diverged: three left, an unbalanced grid (no units x batch
    interaction estimable from three cells: main effects only, said)."""
    effects, metrics, _ = grid(tmp_path, monkeypatch, clear, diverged={(40, 128)})
    err = capsys.readouterr().err
    assert "left out 1 item(s) with a diverged seed: layers3-units40-lr0.05-batch128" in err
    assert "cannot estimate the axes' two-way interactions: main effects only" in err
    assert effects["runs"] == 9 and effects["interactions_in_model"] is False
    assert metrics["possibly_best"] == 1  # units 40, batch 64, epochs 40 alone


def test_one_seed_of_a_two_axis_grid_leaves_no_error_and_says_so(tmp_path, monkeypatch,
                                                                  capsys):
    """One seed, 3 x 2 items: the run means are saturated by units, batch and their interaction
    (6 runs, 6 parameters): the effects have no interval, every configuration could be the best;
    the epochs' effect still has its interval (within runs)."""
    effects, metrics, _ = grid(tmp_path, monkeypatch, clear, seeds=(0,), units=(30, 40, 50))
    err = capsys.readouterr().err
    assert "one seed: no seed blocks" in err and "no degrees of freedom left for the noise" in err
    assert effects["noise"]["df_runs"] == 0 and metrics["possibly_best"] == 12
    epochs = next(r for r in effects["levels"] if r["axis"] == "epochs" and "effect" in r)
    assert epochs["low"] < epochs["effect"] < epochs["high"]


def test_no_error_degrees_of_freedom_keep_every_configuration(tmp_path, monkeypatch, capsys):
    """Two items, one seed, one checkpoint: the model uses every observation, nothing is left
    to estimate the noise: no interval, every configuration could be the best, said."""
    effects, metrics, report = grid(tmp_path, monkeypatch, clear, seeds=(0,), epochs=(40,),
                                    batch=(64,))
    assert "no degrees of freedom left for the noise" in capsys.readouterr().err
    assert metrics["possibly_best"] == 2 and "top_effect_ci" not in metrics
    assert effects["mcb"]["critical_value"] is None
    assert report["equivalence"] == {"margin": 0.005, "equivalent": 0, "worse": 0,
                                     "undecided": 2}


def test_equal_accuracies_everywhere_leave_every_configuration_and_no_test(tmp_path,
                                                                          monkeypatch):
    """No noise and no effect at all (the same count everywhere): nothing is 0/0 or rounding
    noise in the outputs; every configuration could be the best; F-tests are null."""
    effects, metrics, report = grid(tmp_path, monkeypatch, lambda u, b, s, e: 0.85)
    assert metrics["possibly_best"] == 8 and metrics["top_effect"] == 0
    assert all(r["F"] is None and r["share"] is None for r in effects["anova"]
               if r["term"] != "error")
    assert effects["noise"]["sd_run"] == 0 and effects["noise"]["seed_share"] is None


def test_one_item_compares_its_checkpoints_on_their_own_noise(tmp_path, monkeypatch, capsys):
    """One item, 3 seeds, 2 checkpoints: no run-to-run comparison is needed, so MCB judges the
    two checkpoints with the within-run noise (epochs x seed, 2 df), and says nothing about
    missing degrees of freedom."""
    effects, metrics, _ = grid(tmp_path, monkeypatch, clear, units=(40,), batch=(64,))
    assert "no degrees of freedom" not in capsys.readouterr().err
    assert effects["mcb"]["df_within"] == 2 and effects["mcb"]["critical_value"] > 0
    assert metrics["possibly_best"] == 1  # 40 epochs: +0.01 on every seed, noise ~0.001


def test_no_item_with_every_checkpoint_above_chance_leaves_no_model(tmp_path, monkeypatch,
                                                                    capsys):
    """Every item at chance at 20 epochs and all but one at 40 too: one configuration alive,
    no item whole: no model, said, and that configuration could be the best."""
    def accuracy(u, b, s, e):
        return 0.85 if (u, b, e) == (40, 64, 40) else 0.1

    effects, metrics, report = grid(tmp_path, monkeypatch, accuracy)
    err = capsys.readouterr().err
    assert "no item has every checkpoint above chance: no model" in err
    assert metrics == {**{k: metrics[k] for k in ("val_accuracy", "accuracy_std", "val_loss",
                                                    "seed0_val_accuracy")}, "possibly_best": 1}
    assert report["possibly_best"] == ["units 40, batch 64, epochs 40"]
    assert Path("effects.csv").read_text() == "effect,axis,estimate,low,high,p\n"
