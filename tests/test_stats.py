"""A configuration's figures over its seeds (fmnist_mlp/evaluation/stats.py): the mean, the
standard deviation and the t interval, and the paired t-test's p-value, on known values."""

import math

import pytest
from scipy import stats

from fmnist_mlp.evaluation.stats import paired_p, summary


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


def test_two_seeds_have_a_spread_and_a_test():
    """n = 2 is the smallest sample with a standard deviation and a paired t-test."""
    s = summary([0.8, 0.9])
    assert s == {"mean": pytest.approx(0.85), "std": pytest.approx(0.0707107, rel=1e-5),
                 "ci95": pytest.approx(12.706205 * 0.0707107 / math.sqrt(2), rel=1e-5), "n": 2}
    a, b = [0.8, 0.9], [0.7, 0.85]
    assert paired_p(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_p([0.5, 0.75], [0.25, 0.5]) == 0.0 and paired_p(a, a) == 1.0
