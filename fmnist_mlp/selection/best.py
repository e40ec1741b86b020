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
- **Equivalence to the best** (two one-sided verdicts, against the unknown best, not the
  data's winner): equivalent when MCB's lower bound D- of mu_c - max_{j != c} mu_j is above
  -margin (c trails the best by less than the margin); worse when the upper bound of
  mu_c - mu_best, the best taken among the configurations that could be the best,
  max_{j in set, j != c} (ybar_c - ybar_j + d se_cj), is below -margin (c trails the best by
  more than the margin); undecided otherwise. Both follow from the event behind the set (every
  error within d se above the best's), so the set and all verdicts hold together at 1 - alpha.
  (A t-test against the winner alone ignores that the winner is picked from the same data:
  with every configuration equal it calls one "worse" in ~40 % of grids.)
"""

from __future__ import annotations

import numpy as np

CHUNK = 2000  # draws at a time, for memory; a constant, as it sets the draws' order (another
# value draws other numbers: d moves within its Monte Carlo error)


def variances(noise: dict, K: int, S: int) -> tuple[float, float, float]:
    """(v_same, v_other, df_other): the estimated variance of the difference of two
    configurations' means of the same item and of two items, and the Welch-Satterthwaite
    degrees of freedom of the latter (a sum of the two strata's mean squares)."""
    ms_w, df_w, ms_s, df_s = (noise[k] for k in ("ms_runs", "df_runs", "ms_within", "df_within"))
    within = (1 - 1 / K) * ms_s if K > 1 else 0.0  # s2_e (1 - 1/K): ms_runs holds s2_e / K
    v_other = 2 * (ms_w + within) / S
    v_same = 2 * ms_s / S if K > 1 else 0.0
    parts = (ms_w ** 2 / df_w if df_w > 0 else 0.0) + (within ** 2 / df_s if df_s > 0 else 0.0)
    df_other = (ms_w + within) ** 2 / parts if parts > 0 else np.inf
    return v_same, v_other, df_other


def critical_value(items: np.ndarray, noise: dict, K: int, S: int, alpha: float, draws: int,
                   seed: int) -> float:
    """d: the (1 - alpha) quantile of max_{j != b} (err_j - err_b) / se_bj over ``draws`` draws
    of the configurations' errors (b: any configuration; every item holds K of them, so the
    quantile is the same for each), with the mean squares redrawn: MS ~ sigma2 chi2_df / df."""
    ms_w, df_w, ms_s, df_s = (noise[k] for k in ("ms_runs", "df_runs", "ms_within", "df_within"))
    s2_e = ms_s if K > 1 else 0.0
    s2_run = max(0.0, ms_w - s2_e / K) if df_w > 0 else 0.0  # one item: no other item to meet
    tau2 = s2_run + s2_e / K  # what ms_runs estimates
    n_items = len(np.unique(items))
    same = items == items[0]  # (C,) b's own item, b itself included
    rng = np.random.default_rng(seed)
    maxima = []
    for start in range(0, draws, CHUNK):
        n = min(CHUNK, draws - start)
        run = rng.normal(0.0, np.sqrt(s2_run / S), (n, n_items))[:, items]  # (n, C)
        err = run + rng.normal(0.0, np.sqrt(s2_e / S), (n, len(items)))  # (n, C)
        ms_w_star = (tau2 * rng.chisquare(df_w, n) / df_w if df_w > 0 and tau2 > 0
                     else np.zeros(n))  # (n,): none with one item
        ms_s_star = s2_e * rng.chisquare(df_s, n) / df_s if s2_e > 0 else np.zeros(n)  # (n,)
        se_other = np.sqrt(2 * (ms_w_star + (1 - 1 / K) * ms_s_star) / S)  # (n,)
        se_same = np.sqrt(2 * ms_s_star / S)  # (n,)
        excess = err - err[:, :1]  # (n, C)
        se = np.where(same, se_same[:, None], se_other[:, None])  # (n, C)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(excess == 0, 0.0, excess / se)  # no noise: a tie, not 0/0
        maxima.append(np.max(t[:, 1:], axis=1))  # (n,): b is column 0
    return float(np.quantile(np.concatenate(maxima), 1 - alpha))


def mcb(ybar: np.ndarray, items: np.ndarray, noise: dict, K: int, S: int, alpha: float,
        draws: int, seed: int) -> dict:
    """Hsu's constrained MCB for configurations with means ``ybar`` (C,) of items ``items``
    (C,): per configuration the bounds [low, high] of mu_c - max_{j != c} mu_j (simultaneous
    (1 - alpha); the lower bound takes the minimum over every j, a little wider than Hsu's over
    the set) and whether it could be the best; the critical value d; ``se`` (C, C)."""
    C = len(ybar)
    if C == 1:  # nothing to compare: it is the best
        return {"d": 0.0, "low": [0.0], "high": [0.0], "possibly_best": [True],
                "se": np.zeros((1, 1))}
    v_same, v_other, _ = variances(noise, K, S)
    se = np.sqrt(np.where(items[:, None] == items[None, :], v_same, v_other))  # (C, C)
    d = critical_value(items, noise, K, S, alpha, draws, seed)
    if not np.isfinite(d):
        return {"d": d, "low": [np.nan] * C, "high": [np.nan] * C, "possibly_best": [True] * C,
                "se": se}
    diff = ybar[:, None] - ybar[None, :]  # (C, C): ybar_c - ybar_j
    off = ~np.eye(C, dtype=bool)
    upper = np.where(off, diff + d * se, np.inf).min(axis=1)  # (C,)
    lower = np.where(off, diff - d * se, np.inf).min(axis=1)  # (C,)
    return {"d": d, "low": np.minimum(0.0, lower).tolist(), "high": np.maximum(0.0, upper).tolist(),
            "possibly_best": (upper >= 0).tolist(), "se": se}


def equivalence(ybar: np.ndarray, chosen: dict, margin: float) -> list[dict]:
    """Each configuration's verdict against the best within ``margin``, from ``chosen`` (mcb's
    result): ``vs_best_high``, the upper bound of mu_c - mu_best with the best taken among the
    configurations that could be the best, and equivalent, worse or undecided."""
    C = len(ybar)
    if not np.isfinite(chosen["d"]):
        return [{"vs_best_high": np.nan, "equivalence": "undecided"} for _ in range(C)]
    d, se, contenders = chosen["d"], chosen["se"], np.asarray(chosen["possibly_best"])
    out = []
    for c in range(C):
        rivals = contenders & (np.arange(C) != c)  # (C,)
        gap = float(np.max(ybar[c] - ybar[rivals] + d * se[c, rivals])) if rivals.any() \
            else 0.0  # alone in the set: it is the best
        verdict = ("equivalent" if chosen["low"][c] > -margin else "worse" if gap < -margin
                   else "undecided")
        out.append({"vs_best_high": gap, "equivalence": verdict})
    return out
