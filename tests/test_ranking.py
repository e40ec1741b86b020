"""The ranking over the seeds (fmnist_mlp/selection/ranking.py), on hand-made items with known
answers: an item's metrics read back (missing, malformed, another trial's, diverged), the
configurations and their labels, the best by accuracy then loss then grid order, each
configuration's paired t-test against the winner seed by seed, the chance level, the overlay of
the curves."""

import json
import math
from itertools import permutations

import pytest
from conftest import (
    EXAMPLES,
    LISTED_OTHERWISE,
    OTHER,
    SEEDS,
    WINNER,
    fake_item,
    section,
    trial_of,
)
from scipy import stats

from fmnist_mlp.core.errors import DataError
from fmnist_mlp.evaluation.stats import summary
from fmnist_mlp.grid.search import SearchConfig, Trial, divergence, expand_grid, write_item_metrics
from fmnist_mlp.selection.ranking import (
    at_chance,
    compare,
    configurations,
    figures_at,
    label,
    overlay,
    read_item,
    select_best,
    varying,
)


def test_missing_item_is_a_clear_error(tmp_path):
    trial = Trial(3, 30, 0.05, 64, 0.001, "relu")
    with pytest.raises(DataError, match=f"{trial.name}/metrics.json: missing"):
        read_item(tmp_path / trial.name, trial, (20,), (0,))


TRIAL_FIELDS = {"hidden_layers": 3, "hidden_units": 30, "learning_rate": 0.05, "batch_size": 64,
                "l2": 0.001, "activation": "relu"}


@pytest.mark.parametrize("content", [
    "not json",
    json.dumps({"trial": {}, "epochs": {}}),
    json.dumps({"trial": TRIAL_FIELDS, "val_examples": 10,
                "seeds": {"0": {"epochs": {"40": {"val_correct": 9, "val_loss": 0.3}}}}}),
    json.dumps({"trial": TRIAL_FIELDS, "val_examples": 10,
                "seeds": {"1": {"epochs": {"20": {"val_correct": 9, "val_loss": 0.3}}}}}),
    json.dumps({"trial": TRIAL_FIELDS,  # rounded accuracies, not exact counts
                "seeds": {"0": {"epochs": {"20": {"val_accuracy": 0.9, "val_loss": 0.3}}}}}),
    json.dumps({"trial": TRIAL_FIELDS, "val_examples": 10,
                "seeds": {"0": {"epochs": {"20": {"val_correct": 11, "val_loss": 0.3}}}}}),
    json.dumps({"trial": TRIAL_FIELDS, "val_examples": 10,
                "seeds": {"0": {"epochs": {"20": {"val_correct": 8.5, "val_loss": 0.3}}}}}),
])
def test_malformed_item_names_the_file(tmp_path, content):
    trial = Trial(3, 30, 0.05, 64, 0.001, "relu")
    (tmp_path / trial.name).mkdir()
    (tmp_path / trial.name / "metrics.json").write_text(content)
    with pytest.raises(DataError, match="metrics.json: malformed item metrics"):
        read_item(tmp_path / trial.name, trial, (20,), (0,))


def test_item_recording_another_trial_is_rejected(tmp_path):
    trial, other = (Trial(3, 30, 0.05, batch, 0.001, "relu") for batch in (64, 128))
    fake_item(tmp_path, other, {20: (0.8, 0.5)})
    (tmp_path / other.name).rename(tmp_path / trial.name)
    with pytest.raises(DataError, match="records"):
        read_item(tmp_path / trial.name, trial, (20,), (0,))


@pytest.mark.parametrize("correct, valid", [(0, True), (10, True), (11, False), (-1, False)])
def test_a_count_of_correct_predictions_runs_from_0_to_the_examples(correct, valid):
    if valid:
        assert figures_at({"val_correct": correct, "val_loss": 1.5}, 10) == {
            "val_correct": correct, "val_accuracy": correct / 10, "val_loss": 1.5}
    else:
        with pytest.raises(ValueError, match=f"val_correct {correct} is not a count of 0..10"):
            figures_at({"val_correct": correct, "val_loss": 1.5}, 10)


@pytest.mark.parametrize("examples, valid", [(1, True), (0, False)])
def test_an_item_with_one_validation_example_is_read(tmp_path, examples, valid):
    trial = Trial(1, 8, 0.1, 32, 0.0, "relu")
    (tmp_path / trial.name).mkdir()
    write_item_metrics(tmp_path / trial.name / "metrics.json", trial, examples,
                       {0: {1: {"val_correct": examples, "val_loss": 0.5}}})
    if valid:
        item = read_item(tmp_path / trial.name, trial, (1,), (0,))
        assert item["seeds"][0][1]["val_accuracy"] == 1.0
    else:
        with pytest.raises(DataError):
            read_item(tmp_path / trial.name, trial, (1,), (0,))


def test_stale_directories_are_ignored(tmp_path):
    # Given the directory of a removed grid value holding a better score
    cfg = section(SearchConfig, hidden_layers=[3], hidden_units=[30], batch_size=[64],
                  epochs=[2])
    (current,) = expand_grid(cfg)
    fake_item(tmp_path, current, {2: (0.80, 0.5)})
    fake_item(tmp_path, Trial(9, 99, 0.05, 64, 0.001, "relu"), {2: (0.99, 0.1)})
    # When only the current grid is read
    items = [read_item(tmp_path / t.name, t, cfg.epochs, (0,)) for t in expand_grid(cfg)]
    # Then the stale item plays no part
    assert select_best(configurations(items))["item"] == current.name


def test_diverged_items_have_no_configuration_and_are_named(tmp_path):
    good, wild = Trial(3, 30, 0.05, 64, 0.001, "relu"), Trial(3, 30, 100.0, 64, 0.001, "relu")
    fake_item(tmp_path, good, {2: (0.8, 0.5)})
    (tmp_path / wild.name).mkdir()
    write_item_metrics(tmp_path / wild.name / "metrics.json", wild, EXAMPLES,
                       {0: {"diverged": {"epoch": 1, "loss": "nan", "val_loss": "nan"}}})
    items = [read_item(tmp_path / t.name, t, (2,), (0,)) for t in (good, wild)]
    assert [r["item"] for r in configurations(items)] == [good.name]
    assert divergence(wild, items[1]["diverged"]) == \
        f"{wild.name} (seed 0: loss nan, val_loss nan at epoch 1)"


def test_labels_show_only_the_axes_that_vary():
    cfg = section(SearchConfig)  # the seed's grid: lr and l2 are the same for every item
    assert varying(cfg) == ("hidden_layers", "hidden_units", "batch_size", "epochs")
    items = [{"trial": Trial(3, 40, 0.05, 128, 0.001, "relu"), "diverged": {}, "val_examples": 10,
              "seeds": {0: {40: {"val_correct": 9, "val_accuracy": 0.9, "val_loss": 0.3}}}}]
    (row,) = configurations(items, varying(cfg))
    assert row["label"] == "layers 3, units 40, batch 128, epochs 40"
    assert configurations(items)[0]["label"] == \
        "layers 3, units 40, lr 0.05, batch 128, l2 0.001, relu, epochs 40"
    one = section(SearchConfig, hidden_layers=[3], hidden_units=[40], batch_size=[64],
                  epochs=[20])
    assert varying(one) == () and label(row, varying(one)) == "the only configuration"


def test_selection_prefers_accuracy_then_loss_then_grid_order(tmp_path):
    # Given two items whose best checkpoints tie on accuracy
    a, b = Trial(3, 30, 0.05, 64, 0.001, "relu"), Trial(3, 40, 0.05, 64, 0.001, "relu")
    fake_item(tmp_path, a, {20: (0.88, 0.40), 40: (0.87, 0.38)})
    fake_item(tmp_path, b, {20: (0.86, 0.41), 40: (0.88, 0.35)})
    # When the current grid is read and the best configuration selected
    items = [read_item(tmp_path / t.name, t, (20, 40), (0,)) for t in (a, b)]
    rows = configurations(items)
    best = select_best(rows)
    # Then the lower validation loss breaks the tie
    assert len(rows) == 4
    assert (best["item"], best["epochs"], best["val_loss"]) == (b.name, 40, 0.35)
    # And an exact tie goes to the earlier configuration in grid order
    exact = [dict(rows[0]), dict(rows[0], label="later")]
    assert select_best(exact) is exact[0]


def test_empty_grid_cannot_be_selected():
    with pytest.raises(DataError, match="empty"):
        select_best([])


def ranked(tmp_path, scores_by_trial, alpha=0.05):
    items = []
    for trial, scores in scores_by_trial.items():
        fake_item(tmp_path, trial, scores, SEEDS)
        items.append(read_item(tmp_path / trial.name, trial, tuple(scores), SEEDS))
    rows = configurations(items)
    best = select_best(rows)
    return compare(rows, best, alpha), best


A, B, C = (Trial(3, u, 0.05, 64, 0.001, "relu") for u in (30, 40, 50))


def test_a_clear_winner_is_distinguishable(tmp_path):
    rows, best = ranked(tmp_path, {
        A: {20: [(0.80, 0.5), (0.81, 0.5), (0.79, 0.5)]},
        B: {20: [(0.88, 0.4), (0.885, 0.4), (0.875, 0.4)]}})
    assert best["item"] == B.name and best["val_accuracy"] == pytest.approx(0.88)
    (other,) = [r for r in rows if r["item"] == A.name]
    assert other["p_vs_best"] < 0.01 and other["distinguishable"]
    assert other["std"] == pytest.approx(0.01) and other["ci95"] > 0


def test_a_winner_within_noise_is_not_distinguishable(tmp_path):
    # B wins on the mean only because of seed 1; the differences +0.01, +0.02, -0.02 are noise
    rows, best = ranked(tmp_path, {
        A: {20: [(0.86, 0.4), (0.85, 0.4), (0.87, 0.4)]},
        B: {20: [(0.87, 0.4), (0.87, 0.4), (0.85, 0.4)]}})
    assert best["item"] == B.name
    (other,) = [r for r in rows if r["item"] == A.name]
    assert 0.5 < other["p_vs_best"] <= 1 and not other["distinguishable"]


def test_ties_go_to_lower_loss_then_grid_order_and_are_not_distinguishable(tmp_path):
    same = {20: [(0.85, 0.4), (0.86, 0.4), (0.87, 0.4)]}
    rows, best = ranked(tmp_path, {A: same, B: same,
                                   C: {20: [(0.85, 0.3), (0.86, 0.3), (0.87, 0.3)]}})
    assert best["item"] == C.name  # equal accuracy: the lower mean loss
    assert all(r["p_vs_best"] == 1.0 and not r["distinguishable"] for r in rows)
    rows, best = ranked(tmp_path / "again", {A: same, B: same})
    assert best["item"] == A.name  # a full tie: grid order


def test_the_first_seed_alone_is_the_single_run_protocol(tmp_path):
    """With seeds=(0,) the rows are seed 0's own figures: the seed's single-run selection."""
    scores = {A: {20: [(0.89, 0.4), (0.80, 0.5), (0.80, 0.5)]},
              B: {20: [(0.86, 0.4), (0.87, 0.4), (0.87, 0.4)]}}
    items = []
    for trial, s in scores.items():
        fake_item(tmp_path, trial, s, SEEDS)
        items.append(read_item(tmp_path / trial.name, trial, (20,), SEEDS))
    assert select_best(configurations(items))["item"] == B.name  # over 3 seeds
    single = select_best(configurations(items, seeds=(0,)))
    assert (single["item"], single["val_accuracy"]) == (A.name, 0.89)


def test_statistics_come_from_the_exact_counts_not_rounded_accuracies(tmp_path):
    """Counts over 12 000 validation images (the real split): the mean, std, interval and paired
    p-value equal those computed from correct/total in exact arithmetic, well beyond the 6 digits
    an accuracy is written with."""
    from fractions import Fraction

    total = 12_000
    # B's seeds rank in another order than A's: pairing sorted values would change p
    counts = {A: [10531, 10538, 10599], B: [10550, 10530, 10577]}
    items = []
    for trial, correct in counts.items():
        (tmp_path / trial.name).mkdir()
        write_item_metrics(tmp_path / trial.name / "metrics.json", trial, total,
                           {s: {40: {"val_correct": c, "val_loss": 0.3}} for s, c in
                            zip(SEEDS, correct)})
        items.append(read_item(tmp_path / trial.name, trial, (40,), SEEDS))
    rows = configurations(items)
    best = select_best(rows)
    (a, b) = compare(rows, best, 0.05)
    exact_mean = Fraction(sum(counts[A]), 3 * total)
    assert a["val_accuracy"] == float(exact_mean)  # not a mean of rounded values
    deviations = [Fraction(c, total) - exact_mean for c in counts[A]]
    exact_std = math.sqrt(float(sum(d * d for d in deviations) / 2))
    assert a["std"] == pytest.approx(exact_std, rel=1e-12)
    rounded = [round(c / total, 6) for c in counts[A]]  # what the item files used to hold
    assert a["std"] != pytest.approx(summary(rounded)["std"], rel=1e-6)
    exact_p = stats.ttest_rel([c / total for c in counts[A]],
                              [c / total for c in counts[B]]).pvalue
    assert b["p_vs_best"] == pytest.approx(exact_p, rel=1e-12)
    assert at_chance(rows) == []


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_equal_totals_tie_exactly_whatever_the_order_of_the_seeds(tmp_path, order):
    """Three configurations whose seeds' counts differ but sum to the same total: their means
    are the same float, bit for bit, however the seeds' counts are permuted (a mean of rounded
    or summed-in-order floats would differ in the last bit: 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1),
    and the tie goes to the first in grid order."""
    total, seeds = 10_000, (0, 1, 2)
    counts = [[1000, 2000, 3000], [3000, 2000, 1000], [1999, 2001, 2000]]  # 0.1 + 0.2 + 0.3 each
    trials = [Trial(1, units, 0.05, 64, 0.001, "relu") for units in (8, 16, 32)]
    items = []
    for trial, correct in zip(trials, counts):
        (tmp_path / trial.name).mkdir()
        write_item_metrics(tmp_path / trial.name / "metrics.json", trial, total,
                           {seeds[i]: {40: {"val_correct": correct[i], "val_loss": 0.3}}
                            for i in order})
        items.append(read_item(tmp_path / trial.name, trial, (40,), seeds))
    rows = configurations(items)
    assert len({r["val_accuracy"] for r in rows}) == 1 and rows[0]["val_accuracy"] == 0.2
    assert select_best(rows)["item"] == trials[0].name


def test_a_configuration_at_chance_level_is_found():
    rows = [{"val_accuracy": 0.1008, "val_examples": 36_000},  # a dead model: 1/10
            {"val_accuracy": 0.1051, "val_examples": 36_000},  # 3 standard errors: 0.1047
            {"val_accuracy": 0.85, "val_examples": 36_000}]
    assert at_chance(rows) == rows[:1]


def test_the_overlay_ranks_the_leaders_and_puts_the_rest_after(tmp_path):
    trials = [Trial(1, units, 0.05, 64, 0.001, "relu") for units in (8, 9, 10)]
    for trial in trials:
        (tmp_path / f"{trial.name}.csv").write_text(
            f"epoch,val_accuracy\n1,0.{trial.hidden_units}\n")
    assert [r["item"] for r in overlay(tmp_path, trials, (), [])] == [t.name for t in trials]
    rows = overlay(tmp_path, trials, ("hidden_units",), [trials[2].name])
    assert rows == [{"epoch": 1, "item": "units 10", "rank": 1, "val_accuracy": 0.1},
                    {"epoch": 1, "item": "units 8", "rank": 2, "val_accuracy": 0.8},
                    {"epoch": 1, "item": "units 9", "rank": 2, "val_accuracy": 0.9}]


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

    return [{"trial": trial_of(40), "seeds": figures(WINNER, SEEDS), "diverged": {},
             "val_examples": EXAMPLES},
            {"trial": trial_of(50), "seeds": figures(OTHER, order), "diverged": {},
             "val_examples": EXAMPLES}]


@pytest.mark.parametrize("order", [SEEDS, LISTED_OTHERWISE])
def test_the_paired_test_pairs_each_configurations_seeds_with_the_winners(order):
    """ranking.compare's p-value of the other configuration is the paired t-test of WINNER and
    OTHER seed by seed, whatever the order its figures list the seeds in."""
    rows = configurations(items_with_seeds_listed(order), ("hidden_units",))
    other = next(r for r in compare(rows, select_best(rows), 0.05) if r["hidden_units"] == 50)
    assert other["p_vs_best"] == pytest.approx(stats.ttest_rel(WINNER, OTHER).pvalue, rel=1e-9)
    assert other["val_accuracy_seeds"] == pytest.approx(OTHER)  # search.seeds' order
