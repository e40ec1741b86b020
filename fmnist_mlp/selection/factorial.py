"""What each axis of the grid does: the search as a designed experiment.

The grid is a full factorial in its axes; every item is trained once per seed (a *run*), and the
seed sets the data order and the initial draws of every item alike, so the seeds are blocks; each
run is measured at every listed epoch, so its checkpoints are repeated measures of one run. That
is a split-plot design: the runs are the whole plots (the six axes of an item vary between
runs), the checkpoints the sub-plots (epochs varies within a run). Its model, for run r (item i,
seed s) at epoch k:

    y[r, k] = mu + item axes' main effects and two-way interactions + seed[s] + run[r]
              + epochs[k] + epochs x each axis + e[r, k],   run[r] ~ N(0, s2_run), e ~ N(0, s2_e)

a mixed model with the run as a random effect. With every run measured at every listed epoch its
GLS estimates separate exactly into two strata, each ordinary least squares (anova.py): the run
means (the axes, their interactions and the seeds, against the runs' error, variance
s2_run + s2_e/K) and the deviations within runs (epochs and its interactions, against the
checkpoints' error s2_e). Each effect gets an exact t-interval on its stratum's degrees of freedom
(docs/statistics.md; tests/test_factorial.py checks it against statsmodels' MixedLM, a hand
least-squares fit, a textbook split-plot and a coverage simulation).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from fmnist_mlp.selection.anova import Fit, contrast, fit, interaction, sum_code, term_test, wald


@dataclass(frozen=True)
class Runs:
    """The model's data: every run at every listed epoch. ``factors`` holds the item axes that
    vary (axis -> (R,) each run's level), ``levels`` their levels present, the reference (the
    first in params.yaml) first; ``items`` (R,) each run's configuration cell (its item)."""

    y: np.ndarray  # (R, K) validation accuracy of run r at epochs[k]
    factors: dict[str, np.ndarray]
    levels: dict[str, tuple]
    seeds: np.ndarray  # (R,)
    epochs: tuple  # (K,)
    items: np.ndarray  # (R,)

    @property
    def seed_levels(self) -> tuple:
        return tuple(dict.fromkeys(self.seeds.tolist()))


def whole_plot_blocks(factors: dict, levels: dict, seeds, seed_levels: tuple,
                      pairs: bool = True) -> list[tuple[str, np.ndarray]]:
    """The run-level design: intercept, each axis, each pair of axes (``pairs``), the seeds."""
    n = len(seeds)
    codes = {a: sum_code(factors[a], levels[a]) for a in levels}
    blocks = [("intercept", np.ones((n, 1)))] + [(a, codes[a]) for a in levels]
    if pairs:
        blocks += [(f"{a} x {b}", interaction(codes[a], codes[b]))
                   for a, b in itertools.combinations(levels, 2)]
    if len(seed_levels) > 1:
        blocks.append(("seed", sum_code(seeds, seed_levels)))
    return blocks


def within_blocks(factors: dict, levels: dict, epochs, epoch_levels: tuple, seeds=None,
                  seed_levels: tuple = ()):
    """The within-run design: epochs and epochs x each axis (columns with zero mean in every run
    that holds every epoch: orthogonal to the runs); with ``seeds``, epochs x seed too."""
    E = sum_code(epochs, epoch_levels)  # (n, K-1)
    blocks = [("epochs", E)] + [(f"epochs x {a}", interaction(E, sum_code(factors[a], levels[a])))
                                for a in levels]
    if seeds is not None and len(seed_levels) > 1:
        blocks.append(("epochs x seed", interaction(E, sum_code(seeds, seed_levels))))
    return blocks


def grid(levels: dict, extra: dict | None = None) -> dict:
    """Every combination of ``levels`` (and ``extra``: name -> levels) as columns of equal length:
    the reference grid over which level means are averaged (each cell weighs the same)."""
    names = [*levels, *(extra or {})]
    combos = list(itertools.product(*levels.values(), *(extra or {}).values()))
    return {name: np.array([c[i] for c in combos], dtype=object) for i, name in
            enumerate(names)}


@dataclass(frozen=True)
class Strata:
    whole: Fit  # the run means
    within: Fit | None  # the deviations within runs (None with one listed epoch)
    pairs: bool  # whether the two-way interactions of the item axes are in the model
    levels: dict  # the model's factors: the item axes, or {"item": ...} when the items' cells
    # stand in for them

    @property
    def axes(self) -> dict:
        """The item axes whose effects the model estimates (none when the cells stand in)."""
        return {} if "item" in self.levels else self.levels


def fit_strata(runs: Runs, cells: bool = False) -> Strata:
    """Both strata's least-squares fits. When the items present cannot separate the axes with
    their interactions (a missing cell), the interactions are dropped; when not even the main
    effects, each item is its own cell (no axis effect, but the errors for the comparisons).
    ``cells``: the cell-means model instead (each item its own cell, every interaction of the
    axes in; epochs x seed out of the within-run error, unless there is one item, where it is
    that error): the noise of the configurations' own means, which the comparisons of
    configurations use."""
    R, K = runs.y.shape
    item = ({"item": runs.items}, {"item": tuple(dict.fromkeys(runs.items.tolist()))}, False)
    candidates = [item] if cells else [(runs.factors, runs.levels, True),
                                       (runs.factors, runs.levels, False), item]
    for factors, levels, pairs in candidates:
        blocks = whole_plot_blocks(factors, levels, runs.seeds, runs.seed_levels, pairs)
        X = np.hstack([c for _, c in blocks])  # (R, p)
        if np.linalg.matrix_rank(X) == X.shape[1]:
            break
    with np.errstate(divide="ignore", invalid="ignore"):
        whole = fit(runs.y.mean(axis=1), blocks)
        within = None
        if K > 1:
            epochs = np.tile(np.array(runs.epochs, dtype=object), R)  # (R*K,)
            spread = {a: np.repeat(v, K) for a, v in factors.items()}  # (R*K,) each
            deviations = (runs.y - runs.y.mean(axis=1, keepdims=True)).ravel()  # (R*K,)
            # epochs x seed out of the cell-means error, unless one item leaves it the only one
            several = len(set(runs.items.tolist())) > 1
            seeds = np.repeat(runs.seeds, K) if cells and several else None  # (R*K,)
            within = fit(deviations, within_blocks(spread, levels, epochs, runs.epochs, seeds,
                                                   runs.seed_levels), absorbed=R,
                         level=float(np.abs(runs.y).max()))
    return Strata(whole, within, pairs, levels)


def level_means(strata: Strata, runs: Runs, alpha: float,
                sampled: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Each axis level's estimated mean (averaged over every cell of the other axes and the
    seeds, each weighing the same) and each level's effect: its difference to the reference
    level with its (1 - alpha) t-interval and p-value; and each axis's F-test (all its levels
    equal). The item axes come from the run means, epochs from the deviations within runs (its
    level means: the grand mean plus the level's deviation). ``sampled``: the epochs x seed
    term's test; each epochs effect then also gets ``seeds_as_sample``, its interval and p-value
    if the seeds were a sample of seeds (judged against epochs x seed, the balanced design's
    formula: the standard error scaled by sqrt(MS(epochs x seed) / MS(error)))."""
    levels, rows, axes = strata.levels, [], []
    cells = grid(levels, {"seed": runs.seed_levels})
    X = np.hstack([c for _, c in whole_plot_blocks(
        cells, levels, cells["seed"], runs.seed_levels, strata.pairs)])  # (G, p)
    plans = [(axis, names, strata.whole, 0.0,
              {level: X[cells[axis] == level].mean(axis=0) for level in names})  # (p,) each
             for axis, names in strata.axes.items()]
    if strata.within is not None:
        grand = float(X.mean(axis=0) @ strata.whole.results.params)
        wcells = grid(levels, {"epochs": runs.epochs})
        W = np.hstack([c for _, c in within_blocks(wcells, levels, wcells["epochs"],
                                                    runs.epochs)])  # (G*K, q)
        plans.append(("epochs", runs.epochs, strata.within, grand,
                      {e: W[wcells["epochs"] == e].mean(axis=0) for e in runs.epochs}))
    for axis, names, fitted, offset, L in plans:
        reference = names[0]
        for level in names:
            row = {"axis": axis, "level": level, "reference": reference,
                   "mean": offset + float(L[level] @ fitted.results.params)}
            if level != reference:
                c = contrast(fitted, L[level] - L[reference], alpha)
                row |= {"effect": c["estimate"], "low": c["low"], "high": c["high"],
                        "p": c["p"], "df": c["df"]}
                if axis == "epochs" and sampled and sampled["df"] > 0 and fitted.mse > 0:
                    row["seeds_as_sample"] = as_sample(c, sampled, fitted.mse, alpha)
            rows.append(row)
        test = wald(fitted, np.array([L[level] - L[reference] for level in names[1:]]))
        axes.append({"axis": axis, "levels": len(names), "df": test["df"], "F": test["F"],
                     "p": test["p"], "stratum": "runs" if fitted is strata.whole else "within"})
    return rows, axes


def as_sample(c: dict, sampled: dict, mse: float, alpha: float) -> dict:
    """An epochs contrast ``c`` judged against epochs x seed (``sampled``: its ms and df)."""
    se = c["se"] * np.sqrt(sampled["ms"] / mse)
    half = stats.t.ppf(1 - alpha / 2, sampled["df"]) * se
    p = 2 * stats.t.sf(abs(c["estimate"]) / se, sampled["df"]) if se > 0 else np.nan
    return {"low": c["estimate"] - half, "high": c["estimate"] + half, "p": float(p),
            "df": sampled["df"]}


def anova_table(strata: Strata, runs: Runs) -> list[dict]:
    """Every term's F-test in its stratum and its share of the total sum of squares of the
    observations (type III; the run stratum's on the observations' scale, K times its own):
    with a balanced grid the shares, the two error lines included, add up to 1."""
    R, K = runs.y.shape
    total = float(((runs.y - runs.y.mean()) ** 2).sum())
    table = []
    for fitted, stratum, scale in ((strata.whole, "runs", K), (strata.within, "within", 1)):
        if fitted is None:
            continue
        for name in fitted.terms:
            if name == "intercept":
                continue
            t = term_test(fitted, name)
            table.append({"term": name, "stratum": stratum, "df": t["df"],
                          "ss": t["ss"] * scale, "share": t["ss"] * scale / total if total
                          else np.nan,
                          "F": t["F"], "p": t["p"]})
        ssr = fitted.ssr * scale
        table.append({"term": "error", "stratum": stratum, "df": int(fitted.df_resid),
                      "ss": ssr, "share": ssr / total if total else np.nan, "F": None,
                      "p": None})
    return table


def noise(strata: Strata, runs: Runs) -> dict:
    """The variance components of the noise, from the strata's mean squares (method of moments,
    truncated at 0): checkpoint (within a run), run (between runs of one item and seed block,
    beyond the checkpoints) and seed (the blocks, as if drawn at random); each as a standard
    deviation of one accuracy, and the seed's share of their sum. Also the mean squares and
    degrees of freedom that the comparisons of configurations use."""
    R, K = runs.y.shape
    ms_runs, df_runs = strata.whole.mse, strata.whole.df_resid
    ms_within = strata.within.mse if strata.within is not None else 0.0
    df_within = strata.within.df_resid if strata.within is not None else 0.0
    s2_e = ms_within if K > 1 else 0.0
    s2_run = max(0.0, ms_runs - s2_e / K) if df_runs > 0 else np.nan
    s2_seed = 0.0
    seeds = runs.seed_levels
    if len(seeds) > 1 and df_runs > 0:
        t = term_test(strata.whole, "seed")
        s2_seed = max(0.0, (t["ms"] - ms_runs) / (R / len(seeds)))
    parts = s2_seed + s2_run + s2_e
    return {"sd_seed": float(np.sqrt(s2_seed)), "sd_run": float(np.sqrt(s2_run)),
            "sd_checkpoint": float(np.sqrt(s2_e)),
            "seed_share": float(s2_seed / parts) if parts > 0 else np.nan,
            "ms_runs": ms_runs, "df_runs": df_runs, "ms_within": ms_within,
            "df_within": df_within}


def checks(strata: Strata, runs: Runs, sampled: dict | None = None) -> dict:
    """The assumptions' checks on the residuals: Shapiro-Wilk (normal errors) in each stratum
    (within runs, the residuals of every epoch but the last: a run's residuals sum to 0, so the
    last adds nothing), Brown-Forsythe (equal variances) of the run residuals across each
    axis's levels and the seeds, and the F-test of epochs x seed (``sampled``: pooled into the
    within-run error, it should be small): p-values, small when an assumption fails (None where
    there are too few residuals)."""
    def shapiro(residuals):
        r = np.asarray(residuals)
        return float(stats.shapiro(r).pvalue) if len(r) >= 3 and np.ptp(r) > 0 else None

    K = runs.y.shape[1]
    within = None if strata.within is None else shapiro(
        np.asarray(strata.within.results.resid).reshape(-1, K)[:, :-1].ravel())
    out = {"shapiro_runs": shapiro(strata.whole.results.resid), "shapiro_within": within}
    resid = np.asarray(strata.whole.results.resid)  # (R,)
    spreads = {}
    for name, values in {**{a: runs.factors[a] for a in strata.axes}, "seed": runs.seeds}.items():
        groups = [resid[np.asarray(values == v)] for v in dict.fromkeys(values.tolist())]
        if len(groups) > 1 and all(len(g) > 1 for g in groups) and np.ptp(resid) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spreads[name] = float(stats.levene(*groups, center="median").pvalue)
    out["equal_variance"] = spreads
    out["epochs_x_seed"] = sampled and {k: sampled[k] for k in ("df", "F", "p")}
    return out


def interactions(table: list[dict]) -> list[dict]:
    """The two-way interactions' rows of the ANOVA table."""
    return [row for row in table if " x " in row["term"]]


def analyse(runs: Runs, alpha: float) -> dict:
    """Every estimate of the factorial model: the model's terms, each axis's level means and
    effects, the ANOVA table with each term's share, the noise's components and the checks; and
    the noise of the cell-means model (``cell_noise``), which the comparisons of configurations
    use."""
    strata, cells = fit_strata(runs), fit_strata(runs, cells=True)
    sampled = term_test(cells.within, "epochs x seed") \
        if cells.within is not None and "epochs x seed" in cells.within.terms else None
    means, axes = level_means(strata, runs, alpha, sampled) \
        if strata.axes or len(runs.epochs) > 1 else ([], [])
    table = anova_table(strata, runs)
    return {"strata": strata, "levels": means, "axes": axes, "anova": table,
            "interactions": interactions(table), "noise": noise(strata, runs),
            "cell_noise": noise(cells, runs), "checks": checks(strata, runs, sampled)}
