"""A linear model with named terms, fitted by least squares (statsmodels' OLS), and what is asked
of it: each term's F-test (its columns all zero), a linear contrast with its t-interval. The
factorial analysis of the grid (factorial.py) fits one in each stratum of its design.

Factors enter in sum-to-zero coding (``sum_code``): a term's columns then test the term itself,
averaged over the others (SAS's type III), and every contrast of level means is estimable from
the columns; a term's sum of squares is the quadratic form of its estimates (type III).
Certified against NIST's StRD ANOVA data sets (tests/test_anova.py).

A sum of squares below ``NOISE`` times the response's own is rounding, not data: it is 0 (so no
output digit comes from the arithmetic's last bits), and an error mean square of 0 leaves no test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import stats

NOISE = 1e-12  # relative size of a sum of squares that is rounding


def sum_code(values, levels: tuple) -> np.ndarray:
    """(n, L-1) sum-to-zero (deviation) coding of ``values`` (n,) over ``levels`` (L): column j
    is 1 at levels[j], -1 at the last level, 0 elsewhere; each column sums to 0 over the
    levels."""
    values = np.asarray(values, dtype=object)  # (n,)
    columns = np.zeros((len(values), len(levels) - 1))  # (n, L-1)
    for j, level in enumerate(levels[:-1]):
        columns[values == level, j] = 1.0
    columns[values == levels[-1], :] = -1.0
    return columns


def interaction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, A*B) row-wise products of every column of ``a`` (n, A) with every column of ``b``
    (n, B): the coding of the interaction of two coded factors."""
    return (a[:, :, None] * b[:, None, :]).reshape(len(a), -1)


@dataclass(frozen=True)
class Fit:
    """A fitted model: statsmodels' results and each term's columns (a slice of the design)."""

    results: object  # statsmodels RegressionResults
    terms: dict[str, slice]
    tss: float  # the response's sum of squares about its mean: the scale of rounding
    level: float  # the data's largest magnitude: an estimate below NOISE of it is rounding

    @property
    def df_resid(self) -> float:
        return float(self.results.df_resid)

    @property
    def ssr(self) -> float:
        """The residual sum of squares (0 when it is rounding)."""
        return self.exact_zero(float(self.results.ssr))

    def exact_zero(self, ss: float) -> float:
        """``ss``, or 0 when it is rounding: below NOISE of the response's own sum of squares,
        or of deviations of NOISE times the data's magnitude in every observation."""
        floor = max(NOISE * self.tss, self.results.nobs * (NOISE * self.level) ** 2)
        return 0.0 if ss <= floor else ss

    @property
    def mse(self) -> float:
        """The error mean square: residual sum of squares over its degrees of freedom."""
        return self.ssr / self.df_resid if self.df_resid > 0 else np.nan



def fit(y, blocks: list[tuple[str, np.ndarray]], absorbed: int = 0,
        level: float | None = None) -> Fit:
    """Least squares of ``y`` (n,) on the named column blocks [(term, (n, k))], in order (the
    intercept is a block like any other). ``absorbed``: parameters already taken out of ``y``
    and of the columns (a fit within groups, after subtracting each group's mean): they cost
    that many residual degrees of freedom; ``level``: the magnitude of the data before that
    (default: ``y``'s)."""
    columns = [np.asarray(c, dtype=np.float64).reshape(len(y), -1) for _, c in blocks]
    X = np.hstack(columns) if columns else np.zeros((len(y), 0))  # (n, p)
    terms, start = {}, 0
    for (name, _), c in zip(blocks, columns):
        terms[name] = slice(start, start + c.shape[1])
        start += c.shape[1]
    y = np.asarray(y, dtype=np.float64)  # (n,)
    model = sm.OLS(y, X)
    if absorbed:
        model.df_resid = model.df_resid - absorbed
    level = float(np.abs(y).max(initial=0.0)) if level is None else level
    return Fit(model.fit(), terms, float(((y - y.mean()) ** 2).sum()), level)


def term_test(fit: Fit, name: str) -> dict:
    """The term's F-test (all its columns zero): df, sum of squares (type III), mean square, F
    and p."""
    cols = fit.terms[name]
    R = np.eye(len(fit.results.params))[cols]  # (k, p)
    return wald(fit, R)


def wald(fit: Fit, R: np.ndarray) -> dict:
    """The F-test of ``R @ beta = 0`` (R (k, p), independent rows): its sum of squares
    q' (R C R')^-1 q (q = R beta, C = (X'X)^-1), F = ss / df / mse and p."""
    df = int(np.linalg.matrix_rank(R))
    q = R @ fit.results.params  # (k,)
    ss = fit.exact_zero(float(q @ np.linalg.solve(R @ fit.results.normalized_cov_params @ R.T,
                                                   q)))
    if not fit.mse > 0:  # no error left, or none to estimate it with
        return {"df": df, "ss": ss, "ms": ss / df, "F": np.nan, "p": np.nan}
    F = ss / df / fit.mse
    return {"df": df, "ss": ss, "ms": ss / df, "F": F,
            "p": float(stats.f.sf(F, df, fit.df_resid))}


def contrast(fit: Fit, L: np.ndarray, alpha: float) -> dict:
    """The estimate of ``L @ beta`` (L (p,)), its standard error, the two-sided (1 - alpha)
    t-interval on the fit's residual degrees of freedom and the p-value of its being zero."""
    estimate = float(L @ fit.results.params)
    estimate = 0.0 if abs(estimate) <= NOISE * fit.level else estimate
    if fit.df_resid <= 0:
        return {"estimate": estimate, "se": np.nan, "low": np.nan, "high": np.nan, "p": np.nan,
                "df": 0}
    if fit.mse == 0:  # no noise at all: the estimate is exact, there is nothing to test
        return {"estimate": estimate, "se": 0.0, "low": estimate, "high": estimate,
                "p": np.nan, "df": int(fit.df_resid)}
    test = fit.results.t_test(L[None, :])
    low, high = np.asarray(test.conf_int(alpha=alpha)).ravel()
    return {"estimate": estimate, "se": float(np.squeeze(test.sd)), "low": float(low),
            "high": float(high), "p": float(np.squeeze(test.pvalue)), "df": int(fit.df_resid)}
