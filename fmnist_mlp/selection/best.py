"""Which configurations could be the best, and which are as good as the best within a margin.

A configuration is an item at one listed epoch; its mean over the seeds is ``ybar`` (C,). Every
configuration is trained with the same seeds, so the seeds' block effects cancel in every
difference; what is left is the noise of the factorial model (factorial.py): two configurations
of one item differ by checkpoint noise only (variance 2 s2_e / S), two of different items also by
their runs' (2 (s2_run + s2_e) / S), each estimated from the pooled mean squares of the model's
two strata (``noise``).

- **Multiple comparisons with the best** (Hsu's MCB, constrained): simultaneous (1 - alpha)
  upper bounds D+ of mu_c - max_{j != c} mu_j; a configuration could be the best when
  D+ >= 0, i.e. ybar_c >= ybar_j - d se_cj for every j (Gupta's subset selection). The true
  best is in that set with probability >= 1 - alpha when d is the (1 - alpha) quantile of
  max_j (err_j - err_b) / se_bj, the studentised largest excess over the best's error. With two
  error strata that quantile has no closed form: it is drawn (``draws`` draws from
  ``select.mcb_seed``) from the model with its estimated variance components, the mean squares
  redrawn from their chi-square laws (a parametric bootstrap of the pivot).
- **Equivalence** (two one-sided tests, each at alpha, against the winner): equivalent when the
  difference's (1 - 2 alpha) interval lies within (-margin, margin), worse when it lies below
  -margin (worse than the winner by more than the margin), undecided otherwise; the interval is
  Student's t on the stratum's degrees of freedom (Welch-Satterthwaite's for two items).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CHUNK = 2000  # draws at a time: memory only (the draws' order and values do not depend on it)


def variances(noise: dict, K: int, S: int) -> tuple[float, float, float]:
    """(v_same, v_other, df_other): the estimated variance of the difference of two
    configurations' means of the same item and of two items, and the Welch-Satterthwaite
    degrees of freedom of the latter (a sum of the two strata's mean squares)."""
    ms_w, df_w, ms_s, df_s = (noise[k] for k in ("ms_runs", "df_runs", "ms_within", "df_within"))
    within = (1 - 1 / K) * ms_s  # s2_e (1 - 1/K): ms_runs holds s2_e / K already
    v_other = 2 * (ms_w + within) / S
    v_same = 2 * ms_s / S
    parts = ms_w ** 2 / df_w + (within ** 2 / df_s if df_s > 0 and within > 0 else 0.0)
    df_other = (ms_w + within) ** 2 / parts if parts > 0 else np.inf
    return v_same, v_other, df_other


def critical_value(items: np.ndarray, noise: dict, K: int, S: int, alpha: float, draws: int,
                   seed: int) -> float:
    """d: the (1 - alpha) quantile of max_{j != b} (err_j - err_b) / se_bj over ``draws`` draws
    of the configurations' errors (b: any configuration; every item holds K of them, so the
    quantile is the same for each), with the mean squares redrawn: MS ~ sigma2 chi2_df / df."""
    ms_w, df_w, ms_s, df_s = (noise[k] for k in ("ms_runs", "df_runs", "ms_within", "df_within"))
    s2_e = ms_s if K > 1 else 0.0
    s2_run = max(0.0, ms_w - s2_e / K)
    tau2 = s2_run + s2_e / K  # what ms_runs estimates
    n_items = len(np.unique(items))
    same = items == items[0]  # (C,) b's own item, b itself included
    rng = np.random.default_rng(seed)
    maxima = []
    for start in range(0, draws, CHUNK):
        n = min(CHUNK, draws - start)
        run = rng.normal(0.0, np.sqrt(s2_run / S), (n, n_items))[:, items]  # (n, C)
        err = run + rng.normal(0.0, np.sqrt(s2_e / S), (n, len(items)))  # (n, C)
        ms_w_star = tau2 * rng.chisquare(df_w, n) / df_w  # (n,)
        ms_s_star = s2_e * rng.chisquare(df_s, n) / df_s if s2_e > 0 else np.zeros(n)  # (n,)
        se_other = np.sqrt(2 * (ms_w_star + (1 - 1 / K) * ms_s_star) / S)  # (n,)
        se_same = np.sqrt(2 * ms_s_star / S)  # (n,)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (err - err[:, :1]) / np.where(same, se_same[:, None], se_other[:, None])
        maxima.append(np.max(t[:, 1:], axis=1))  # (n,): b is column 0
    return float(np.quantile(np.concatenate(maxima), 1 - alpha))


def mcb(ybar: np.ndarray, items: np.ndarray, noise: dict, K: int, S: int, alpha: float,
        draws: int, seed: int) -> dict:
    """Hsu's constrained MCB for configurations with means ``ybar`` (C,) of items ``items``
    (C,): per configuration the bounds [low, high] of mu_c - max_{j != c} mu_j (simultaneous
    (1 - alpha)) and whether it could be the best; the critical value d."""
    C = len(ybar)
    if C == 1:
        return {"d": 0.0, "low": [0.0], "high": [0.0], "possibly_best": [True]}
    v_same, v_other, _ = variances(noise, K, S)
    se = np.sqrt(np.where(items[:, None] == items[None, :], v_same, v_other))  # (C, C)
    d = critical_value(items, noise, K, S, alpha, draws, seed)
    diff = ybar[:, None] - ybar[None, :]  # (C, C): ybar_c - ybar_j
    off = ~np.eye(C, dtype=bool)
    upper = np.where(off, diff + d * se, np.inf).min(axis=1)  # (C,)
    lower = np.where(off, diff - d * se, np.inf).min(axis=1)  # (C,)
    return {"d": d, "low": np.minimum(0.0, lower).tolist(), "high": np.maximum(0.0, upper).tolist(),
            "possibly_best": (upper >= 0).tolist()}


def equivalence(ybar: np.ndarray, items: np.ndarray, winner: int, noise: dict, K: int, S: int,
                alpha: float, margin: float) -> list[dict]:
    """Each configuration against the winner (index ``winner``): the difference, its
    (1 - 2 alpha) interval, the two one-sided tests' p-values (H0: diff <= -margin, H0: diff
    >= margin) and the verdict: best, equivalent, worse or undecided."""
    v_same, v_other, df_other = variances(noise, K, S)
    out = []
    for c in range(len(ybar)):
        delta = float(ybar[c] - ybar[winner])
        if c == winner:
            out.append({"diff": 0.0, "low": 0.0, "high": 0.0, "p_lower": 0.0, "p_upper": 0.0,
                        "equivalence": "best"})
            continue
        same = items[c] == items[winner]
        se, df = (np.sqrt(v_same), noise["df_within"]) if same else (np.sqrt(v_other), df_other)
        t = stats.t.ppf(1 - alpha, df)
        low, high = delta - t * se, delta + t * se
        p_lower = float(stats.t.sf((delta + margin) / se, df))  # H0: diff <= -margin
        p_upper = float(stats.t.cdf((delta - margin) / se, df))  # H0: diff >= margin
        verdict = ("equivalent" if -margin < low and high < margin
                   else "worse" if high < -margin else "undecided")
        out.append({"diff": delta, "low": float(low), "high": float(high), "p_lower": p_lower,
                    "p_upper": p_upper, "equivalence": verdict})
    return out
