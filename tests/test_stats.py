"""Statistics over seeds and the multi-seed selection, on hand-made results with known answers."""

import math

import pytest
from conftest import section
from test_search import fake_item

from fmnist_mlp.evaluation.stats import paired_p, summary
from fmnist_mlp.grid.search import SearchConfig, Trial
from fmnist_mlp.selection.ranking import compare, configurations, read_item, select_best

SEEDS = (0, 1, 2)


def test_summary_mean_std_and_t_interval():
    s = summary([0.80, 0.82, 0.84])
    assert s["mean"] == pytest.approx(0.82) and s["std"] == pytest.approx(0.02)
    # t(0.975, 2) = 4.302653: half-width 4.302653 * 0.02 / sqrt(3)
    assert s["ci95"] == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-6)
    assert summary([0.5]) == {"mean": 0.5, "std": 0.0, "ci95": 0.0, "n": 1}


def test_paired_p_known_values():
    # differences 0.01, 0.02, 0.03: t = mean/(sd/sqrt(3)) = 0.02/(0.01/sqrt 3) = 3.4641, df 2
    assert paired_p([0.91, 0.92, 0.93], [0.90, 0.90, 0.90]) == pytest.approx(0.07418, abs=1e-4)
    assert paired_p([0.9, 0.8, 0.7], [0.9, 0.8, 0.7]) == 1.0  # a tie
    assert paired_p([0.91, 0.81, 0.71], [0.9, 0.8, 0.7]) == 0.0  # every seed agrees
    assert paired_p([0.9], [0.8]) == 1.0  # one seed: no test


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


def test_seeds_must_be_distinct_and_alpha_a_level():
    from fmnist_mlp.core.errors import ConfigError

    with pytest.raises(ConfigError, match="search.seeds: expected a non-empty list of distinct"):
        section(SearchConfig, seeds=[0, 0])
    with pytest.raises(ConfigError, match="search.alpha: expected a value between 0 and 1"):
        section(SearchConfig, alpha=1.5)


def test_statistics_come_from_the_exact_counts_not_rounded_accuracies(tmp_path):
    """Counts over 12 000 validation images (the real split): the mean, std, interval and paired
    p-value equal those computed from correct/total in exact arithmetic, well beyond the 6 digits
    an accuracy is written with."""
    from fractions import Fraction

    from fmnist_mlp.grid.search import write_item_metrics
    from fmnist_mlp.selection.ranking import at_chance

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
    from scipy import stats

    exact_p = stats.ttest_rel([c / total for c in counts[A]],
                              [c / total for c in counts[B]]).pvalue
    assert b["p_vs_best"] == pytest.approx(exact_p, rel=1e-12)
    assert at_chance(rows) == []


def test_a_configuration_at_chance_level_is_found():
    from fmnist_mlp.selection.ranking import at_chance

    rows = [{"val_accuracy": 0.1008, "val_examples": 36_000},  # a dead model: 1/10
            {"val_accuracy": 0.1051, "val_examples": 36_000},  # 3 standard errors: 0.1047
            {"val_accuracy": 0.85, "val_examples": 36_000}]
    assert at_chance(rows) == rows[:1]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_equal_totals_tie_exactly_whatever_the_order_of_the_seeds(tmp_path, order):
    """Three configurations whose seeds' counts differ but sum to the same total: their means
    are the same float, bit for bit, however the seeds' counts are permuted (a mean of rounded
    or summed-in-order floats would differ in the last bit: 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1),
    and the tie goes to the first in grid order."""
    from fmnist_mlp.grid.search import write_item_metrics

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
