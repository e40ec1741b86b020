"""The select stage's defects a hand mutation pass found the tests blind to, each killed through
the stage's outputs (``select``) or the public ranking (``configurations``, ``compare``), with
fixtures whose data tell the right rule from the wrong one:

- the exported models are the winner's epoch's checkpoints, not max(search.epochs)'s, when an
  earlier epoch wins;
- the paired t-test pairs the seeds of every configuration as the winner's, by seed: the
  fixtures' values give a different p-value under every other pairing, sorting included.
"""

import json
import math
from itertools import permutations
from pathlib import Path

import pytest
import yaml
from scipy import stats

from fmnist_mlp.grid.search import Trial, checkpoint_name, write_item_metrics
from fmnist_mlp.selection.ranking import compare, configurations, select_best
from fmnist_mlp.selection.select import select

EXAMPLES = 10_000  # validation examples: an accuracy with 4 decimals is an exact count
SEEDS = (0, 1, 2)
OUTPUTS = ("metrics.json", "report.json", "results.csv", "results.png", "models/best",
           "overlay.csv", "effects.json", "effects.csv")


def trial(units: int) -> Trial:
    return Trial(3, units, 0.05, 64, 0.001, "relu")


def write_item(root: Path, units: int, scores: dict[int, list[float]], order=SEEDS) -> Path:
    """An item directory as the search stage leaves it: metrics.json with ``scores`` ({epoch:
    val accuracy per seed of SEEDS}) listing the seeds in ``order``, and one checkpoint per
    seed and epoch whose bytes name them; its curves file beside."""
    item = root / "models/search" / trial(units).name
    item.mkdir(parents=True)
    runs = {seed: {e: {"val_correct": round(acc[SEEDS.index(seed)] * EXAMPLES),
                       "val_loss": 0.4 - e / 1000} for e, acc in scores.items()}
            for seed in order}
    write_item_metrics(item / "metrics.json", trial(units), EXAMPLES, runs)
    for seed in SEEDS:
        for epoch in scores:
            (item / checkpoint_name(seed, epoch)).write_bytes(
                f"{trial(units).name} seed {seed} epoch {epoch}".encode())
    curves = root / "plots/search"
    curves.mkdir(parents=True, exist_ok=True)
    (curves / f"{trial(units).name}.csv").write_text(
        "epoch,train_accuracy,val_accuracy\n" + "".join(
            f"{e},0.5,{sum(acc) / len(acc):.4f}\n" for e, acc in sorted(scores.items())))
    return item


def write_params(root: Path, units: list[int], epochs: list[int]) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump({"search": {
        "hidden_layers": [3], "hidden_units": units, "learning_rate": [0.05],
        "batch_size": [64], "l2": [0.001], "activation": ["relu"], "epochs": epochs,
        "seeds": list(SEEDS), "alpha": 0.05},
        "select": {"margin": 0.005, "mcb_draws": 20000, "mcb_seed": 0}}))


def run_select() -> None:
    select(Path("models/search"), Path("plots/search"), *map(Path, OUTPUTS))


def test_the_exported_models_are_the_winning_epochs_not_the_last(tmp_path, monkeypatch):
    """Two items checkpointed at 20 and 40 epochs; the best configuration is 40 units at 20
    epochs (its 40-epoch checkpoints are worse): models/best holds each seed's epoch-20 model of
    that item, byte for byte, and config.json says 20 (max(search.epochs) would export the
    epoch-40 files, another item's or the same item's)."""
    write_item(tmp_path, 30, {20: [0.85, 0.84, 0.86], 40: [0.86, 0.85, 0.87]})
    item = write_item(tmp_path, 40, {20: [0.89, 0.88, 0.90], 40: [0.87, 0.86, 0.88]})
    write_params(tmp_path, [30, 40], [20, 40])
    monkeypatch.chdir(tmp_path)  # the stage reads params.yaml where it runs, as under dvc
    run_select()
    best = tmp_path / "models/best"
    for seed in SEEDS:
        assert (best / f"model_seed{seed}.keras").read_bytes() == \
            (item / checkpoint_name(seed, 20)).read_bytes()
    config = json.loads((best / "config.json").read_text())
    assert (config["hidden_units"], config["epochs"]) == (40, 20)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["best"]["label"] == "units 40, epochs 20"
    assert report["runner_up"]["label"] == "units 40, epochs 40"


WINNER = [0.8800, 0.8780, 0.8790]  # per seed 0, 1, 2
OTHER = [0.8700, 0.8690, 0.8670]  # its order by value differs from the winner's


def test_the_fixture_tells_every_other_pairing_apart():
    """Each of the 5 other pairings of OTHER's seeds with WINNER's (sorting both included), and
    an unpaired test, gives another p-value: a test below that asserts the by-seed one can tell
    them from the right rule."""
    right = stats.ttest_rel(WINNER, OTHER).pvalue
    wrong = [stats.ttest_rel(WINNER, [OTHER[i] for i in order]).pvalue
             for order in permutations(range(3)) if order != (0, 1, 2)]
    wrong += [stats.ttest_rel(sorted(WINNER), sorted(OTHER)).pvalue,
              stats.ttest_ind(WINNER, OTHER).pvalue]
    assert min(abs(math.log(p / right)) for p in wrong) > 0.3  # each at least 1.35x apart


def items_with_seeds_listed(order) -> list[dict]:
    """The winner and the other configuration as the ranking reads them (read_item's form),
    the other's seeds listed in ``order``."""
    def figures(values, listed):
        return {seed: {40: {"val_correct": round(values[seed] * EXAMPLES),
                            "val_accuracy": round(values[seed] * EXAMPLES) / EXAMPLES,
                            "val_loss": 0.4}} for seed in listed}

    return [{"trial": trial(40), "seeds": figures(WINNER, SEEDS), "diverged": {},
             "val_examples": EXAMPLES},
            {"trial": trial(50), "seeds": figures(OTHER, order), "diverged": {},
             "val_examples": EXAMPLES}]


LISTED_OTHERWISE = (2, 0, 1)  # an item's metrics.json listing its seeds in another order


@pytest.mark.parametrize("order", [SEEDS, LISTED_OTHERWISE])
def test_the_paired_test_pairs_each_configurations_seeds_with_the_winners(order):
    """ranking.compare's p-value of the other configuration is the paired t-test of WINNER and
    OTHER seed by seed, whatever the order its figures list the seeds in."""
    rows = configurations(items_with_seeds_listed(order), ("hidden_units",))
    other = next(r for r in compare(rows, select_best(rows), 0.05) if r["hidden_units"] == 50)
    assert other["p_vs_best"] == pytest.approx(stats.ttest_rel(WINNER, OTHER).pvalue, rel=1e-9)
    assert other["val_accuracy_seeds"] == pytest.approx(OTHER)  # search.seeds' order


@pytest.mark.parametrize("order", [SEEDS, LISTED_OTHERWISE])
def test_the_select_stage_reports_the_by_seed_p_value(tmp_path, monkeypatch, order):
    """Through the stage's outputs: the report's p_runner_up and p_vs_best are the by-seed
    paired test's, also when the runner-up's metrics.json lists its seeds in another order than
    the winner's."""
    write_item(tmp_path, 40, {40: WINNER})
    write_item(tmp_path, 50, {40: OTHER}, order=order)
    write_params(tmp_path, [40, 50], [40])
    monkeypatch.chdir(tmp_path)
    run_select()
    p = stats.ttest_rel(WINNER, OTHER).pvalue
    report = json.loads(Path("report.json").read_text())
    assert report["p_runner_up"] == pytest.approx(p, rel=1e-4)
    assert report["runner_up"]["p_vs_best"] == pytest.approx(p, rel=1e-4)
    assert report["best"]["val_accuracy_seeds"] == pytest.approx(WINNER)
