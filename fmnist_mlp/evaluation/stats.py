"""Statistics of a configuration over its seeds: mean, spread, a 95 % interval, and the paired
comparison of two configurations trained with the same seeds."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def summary(values) -> dict:
    """Mean, sample standard deviation and the half-width of the 95 % Student-t interval of the
    mean of ``values`` (n,). One value has no spread to estimate: std and ci95 are 0, n = 1."""
    x = np.asarray(values, dtype=np.float64)  # (n,)
    n = len(x)
    if n < 2:
        return {"mean": float(x.mean()), "std": 0.0, "ci95": 0.0, "n": n}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n))
    return {"mean": float(x.mean()), "std": std, "ci95": half, "n": n}


def paired_p(a, b) -> float:
    """Two-sided p-value of the paired t-test of equal means for ``a`` and ``b`` (n,), paired by
    seed. Constant differences have no spread: p is 1 when they are all zero (a tie) and 0 when
    they are all the same non-zero value (every seed agrees). With one pair there is no test: 1."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)  # (n,)
    if len(d) < 2:
        return 1.0
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)
