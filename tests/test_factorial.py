"""The grid's factorial model (fmnist_mlp/selection/factorial.py): a textbook split-plot, the
mixed model it stands for (statsmodels' MixedLM), least squares by hand, and the grids it must
handle (unbalanced, one seed, one checkpoint)."""

import itertools

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from fmnist_mlp.selection.factorial import Runs, analyse

# Yates (1935), the oats split-plot (Venables & Ripley, MASS, section 6.7): 6 blocks, 3 varieties
# on the whole plots, 4 nitrogen levels (0, 0.2, 0.4, 0.6 cwt) on the sub-plots; yield.
OATS = {  # (block, variety): yields at the 4 nitrogen levels
    ("I", "Victory"): [111, 130, 157, 174], ("I", "Golden.rain"): [117, 114, 161, 141],
    ("I", "Marvellous"): [105, 140, 118, 156], ("II", "Victory"): [61, 91, 97, 100],
    ("II", "Golden.rain"): [70, 108, 126, 149], ("II", "Marvellous"): [96, 124, 121, 144],
    ("III", "Victory"): [68, 64, 112, 86], ("III", "Golden.rain"): [60, 102, 89, 96],
    ("III", "Marvellous"): [89, 129, 132, 124], ("IV", "Victory"): [74, 89, 81, 122],
    ("IV", "Golden.rain"): [64, 103, 132, 133], ("IV", "Marvellous"): [70, 89, 104, 117],
    ("V", "Victory"): [62, 90, 100, 116], ("V", "Golden.rain"): [80, 82, 94, 126],
    ("V", "Marvellous"): [63, 70, 109, 99], ("VI", "Victory"): [53, 74, 118, 113],
    ("VI", "Golden.rain"): [89, 82, 86, 104], ("VI", "Marvellous"): [97, 99, 119, 121]}
VARIETIES = ("Golden.rain", "Marvellous", "Victory")


def oats_runs() -> Runs:
    keys = list(OATS)
    variety = np.array([v for _, v in keys], dtype=object)
    return Runs(np.array([OATS[k] for k in keys], dtype=float), {"variety": variety},
                {"variety": VARIETIES}, np.array([b for b, _ in keys], dtype=object),
                (0.0, 0.2, 0.4, 0.6), np.array([VARIETIES.index(v) for v in variety]))


def test_the_oats_split_plot_matches_its_textbook_anova():
    """R's aov(Y ~ N * V + Error(B / V)) in MASS: blocks SS 15 875.3 (5 df); V 1 786.4 (2) against
    the whole-plot error 6 013.3 (10), F 1.485; N 20 020.5 (3), V:N 321.7 (6) against the
    sub-plot error 7 968.8 (45), F 37.69 and 0.303. Standard errors of a difference
    (se.contrast): varieties 7.079, nitrogen levels 4.436."""
    a = analyse(oats_runs(), alpha=0.05)
    table = {(r["stratum"], r["term"]): r for r in a["anova"]}
    expected = {("runs", "seed"): (5, 15875.3), ("runs", "variety"): (2, 1786.4),
                ("runs", "error"): (10, 6013.3), ("within", "epochs"): (3, 20020.5),
                ("within", "epochs x variety"): (6, 321.7), ("within", "error"): (45, 7968.8)}
    for key, (df, ss) in expected.items():
        assert table[key]["df"] == df and table[key]["ss"] == pytest.approx(ss, abs=0.051), key
    assert round(table["runs", "variety"]["F"], 3) == 1.485
    assert round(table["within", "epochs"]["F"], 2) == 37.69
    assert round(table["within", "epochs x variety"]["F"], 3) == 0.303
    assert sum(r["share"] for r in a["anova"]) == pytest.approx(1, abs=1e-12)  # balanced
    effects = {(r["axis"], r["level"]): r for r in a["levels"] if "effect" in r}
    victory = effects["variety", "Victory"]
    assert (victory["low"] + victory["high"]) / 2 == pytest.approx(victory["effect"])
    se = (victory["high"] - victory["effect"]) / 2.228139  # t(0.975, 10)
    assert se == pytest.approx(7.079, abs=5e-4)
    nitrogen = effects["epochs", 0.6]
    assert (nitrogen["high"] - nitrogen["effect"]) / 2.014103 == pytest.approx(4.436, abs=5e-4)
    means = np.array(list(OATS.values()), dtype=float)  # (18, 4)
    assert nitrogen["effect"] == pytest.approx(means[:, 3].mean() - means[:, 0].mean())



def grid_runs(y_of, seeds=(0, 1, 2), epochs=(20, 40), drop=()):
    """A 3 x 2 x 2 grid (layers, units, batch) like the committed search's, each item trained
    with ``seeds``: y_of(layers, units, batch, seed) -> (K,) accuracies; ``drop``: item indices
    left out (an unbalanced grid)."""
    cells = [c for i, c in enumerate(itertools.product((3, 4, 5), (30, 40), (64, 128)))
             if i not in drop]
    rows = [(c, s) for c in cells for s in seeds]
    factors = {a: np.array([c[i] for c, _ in rows], dtype=object)
               for i, a in enumerate(("hidden_layers", "hidden_units", "batch_size"))}
    return Runs(np.array([y_of(*c, s) for c, s in rows], dtype=float), factors,
                {"hidden_layers": (3, 4, 5), "hidden_units": (30, 40), "batch_size": (64, 128)},
                np.array([s for _, s in rows], dtype=object), tuple(epochs),
                np.array([cells.index(c) for c, _ in rows]))


def noisy(seed=0, interaction=0.004):
    """Accuracies with an effect of every kind: layers, units, epochs, layers x units, seed
    blocks, a run effect and checkpoint noise."""
    rng = np.random.default_rng(seed)

    def y_of(layers, units, batch, s):
        base = 0.86 + 0.003 * (layers - 3) + 0.005 * (units == 40) + 0.002 * s \
            + interaction * (layers == 5) * (units == 40) + rng.normal(0, 0.004)
        return [base + rng.normal(0, 0.003), base + 0.006 - 0.003 * (batch == 128)
                + rng.normal(0, 0.003)]
    return y_of


def long_table(runs: Runs) -> pd.DataFrame:
    R, K = runs.y.shape
    frame = pd.DataFrame({a: np.repeat(v, K).astype(int) for a, v in runs.factors.items()})
    frame["seed"] = np.repeat(runs.seeds, K).astype(int)
    frame["run"] = np.repeat(np.arange(R), K)
    frame["epochs"] = np.tile(runs.epochs, R)
    frame["y"] = runs.y.ravel()
    return frame


FORMULA = ("y ~ C(hidden_layers, Sum) * C(hidden_units, Sum) + C(hidden_layers, Sum) * "
           "C(batch_size, Sum) + C(hidden_units, Sum) * C(batch_size, Sum) + C(seed, Sum) + "
           "C(epochs, Sum) * (C(hidden_layers, Sum) + C(hidden_units, Sum) + C(batch_size, Sum))")


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
@pytest.mark.parametrize("drop", [(), (5,), (2, 9)])
def test_the_strata_are_the_mixed_model_with_the_run_as_a_random_effect(drop):
    """statsmodels' MixedLM (REML, the run as a random intercept) on every observation, balanced
    and with one or two items missing: the same effects (to its optimiser's tolerance) with the
    same standard errors, and the same two variance components as the strata's mean squares."""
    runs = grid_runs(noisy(), drop=drop)
    a = analyse(runs, alpha=0.05)
    frame = long_table(runs)
    mixed = smf.mixedlm(FORMULA, frame, groups=frame["run"]).fit(reml=True)
    beta, cov = mixed.fe_params.to_numpy(), mixed.cov_params().to_numpy()[:len(mixed.fe_params)]
    cells = long_table(grid_runs(lambda *c: [0.0, 0.0]))  # every cell, seed and epoch once
    X = np.asarray(patsy.dmatrix(mixed.model.data.design_info, cells))  # (G, p)
    effects = [r for r in a["levels"] if "effect" in r]
    assert len(effects) == 5
    for r in effects:
        at = cells[r["axis"]]
        L = X[at == r["level"]].mean(axis=0) - X[at == r["reference"]].mean(axis=0)  # (p,)
        assert L @ beta == pytest.approx(r["effect"], abs=2e-6), r
        se = np.sqrt(L @ cov[:, :len(L)] @ L)
        half = stats.t.ppf(0.975, r["df"]) * se
        assert (r["low"], r["high"]) == pytest.approx((r["effect"] - half, r["effect"] + half),
                                                      abs=2e-5), r
    noise = a["noise"]
    assert mixed.scale == pytest.approx(noise["ms_within"], rel=1e-3)
    assert float(mixed.cov_re.iloc[0, 0]) == pytest.approx(noise["sd_run"] ** 2, rel=1e-3)


def test_the_effects_are_least_squares_by_hand():
    """A balanced grid, computed without the module: a whole-plot axis's effect is the
    difference of its levels' means; its standard error sqrt(MS (2/n)) with MS the residual
    mean square of the run means on a design of indicator columns (numpy's lstsq, treatment
    coding); the epochs' effect is the mean within-run difference, against the residual mean
    square of the within-run fit with the runs absorbed."""
    runs = grid_runs(noisy(seed=3))
    a = analyse(runs, alpha=0.05)
    got = {(r["axis"], r["level"]): r for r in a["levels"] if "effect" in r}
    R, K = runs.y.shape
    ybar = runs.y.mean(axis=1)  # (R,)
    f = {a_: runs.factors[a_].astype(int) for a_ in runs.factors}
    seed = runs.seeds.astype(int)
    ind = {("hidden_layers", 4): f["hidden_layers"] == 4, ("hidden_layers", 5):
           f["hidden_layers"] == 5, ("hidden_units", 40): f["hidden_units"] == 40,
           ("batch_size", 128): f["batch_size"] == 128}
    cols = [np.ones(R)] + [v.astype(float) for v in ind.values()]
    mains = list(ind)
    for i, j in itertools.combinations(range(len(mains)), 2):
        if mains[i][0] != mains[j][0]:
            cols.append((ind[mains[i]] & ind[mains[j]]).astype(float))
    cols += [(seed == s).astype(float) for s in (1, 2)]
    X = np.column_stack(cols)  # (36, 12)
    beta, ssr, rank, _ = np.linalg.lstsq(X, ybar, rcond=None)
    ms = float(ssr[0]) / (R - rank)
    assert ms == pytest.approx(a["noise"]["ms_runs"], rel=1e-9)
    for (axis, level), at in ind.items():
        ref = runs.levels[axis][0]
        diff = ybar[at].mean() - ybar[runs.factors[axis] == ref].mean()
        half = stats.t.ppf(0.975, R - rank) * np.sqrt(ms * 2 / at.sum())
        assert got[axis, level]["effect"] == pytest.approx(diff, abs=1e-12)
        assert (got[axis, level]["low"], got[axis, level]["high"]) == pytest.approx(
            (diff - half, diff + half), abs=1e-12)
    d = runs.y[:, 1] - runs.y[:, 0]  # (R,) each run's gain from 20 to 40 epochs
    W = np.column_stack([np.ones(R)] + [v.astype(float) for v in ind.values()])  # epochs x axes
    _, ssr_w, rank_w, _ = np.linalg.lstsq(W, d, rcond=None)
    ms_w = float(ssr_w[0]) / 2 / (R - rank_w)  # a difference of two checkpoints: 2 s2_e
    assert ms_w == pytest.approx(a["noise"]["ms_within"], rel=1e-9)
    epochs = got["epochs", 40]
    half = stats.t.ppf(0.975, R - rank_w) * np.sqrt(2 * ms_w / R)
    assert epochs["effect"] == pytest.approx(d.mean(), abs=1e-12)
    assert (epochs["low"], epochs["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    # the seeds as a sample of seeds: the epochs effect against epochs x seed, whose mean square
    # (observation scale, S - 1 df) is the spread of the seeds' mean gains
    gains = np.array([d[seed == s].mean() for s in (0, 1, 2)])  # (S,)
    ms_es = (R / 3) * ((gains - d.mean()) ** 2).sum() / 2 / 2
    half = stats.t.ppf(0.975, 2) * np.sqrt(2 * ms_es / R)
    sample = epochs["seeds_as_sample"]
    assert sample["df"] == 2 and (sample["low"], sample["high"]) == pytest.approx(
        (d.mean() - half, d.mean() + half))
    assert a["checks"]["epochs_x_seed"]["df"] == 2


def test_one_seed_one_checkpoint_and_one_item_are_handled():
    """One seed: no seed term, the error from the higher interactions (3 x 2 x 2 items: 12 runs,
    10 parameters, 2 df). One checkpoint: no within-run stratum. One item at two epochs: only
    the epochs' effect. One item at one epoch with one seed: nothing to estimate, no error."""
    one_seed = analyse(grid_runs(noisy(), seeds=(0,)), 0.05)
    assert one_seed["noise"]["df_runs"] == 2 and "seed" not in [r["term"] for r in
                                                                 one_seed["anova"]]
    one_epoch = grid_runs(lambda *c: noisy()(*c)[:1], epochs=(40,))
    a = analyse(one_epoch, 0.05)
    assert [r["axis"] for r in a["axes"]] == ["hidden_layers", "hidden_units", "batch_size"]
    assert a["noise"]["df_within"] == 0 and a["checks"]["shapiro_within"] is None
    y = np.array([[0.80, 0.82], [0.81, 0.84], [0.79, 0.80]])
    single = Runs(y, {}, {}, np.array([0, 1, 2], dtype=object), (20, 40), np.zeros(3, int))
    a = analyse(single, 0.05)
    (epochs,) = [r for r in a["levels"] if "effect" in r]
    assert epochs["effect"] == pytest.approx((y[:, 1] - y[:, 0]).mean())
    alone = analyse(Runs(y[:1, :1], {}, {}, np.array([0], dtype=object), (20,),
                         np.zeros(1, int)), 0.05)
    assert alone["levels"] == [] and alone["noise"]["df_runs"] == 0


def test_a_missing_cell_drops_the_interactions_it_cannot_estimate():
    """Layers 5 with units 40 missing on both batches: layers x units is not estimable, so the
    model keeps the main effects; with every item but one missing at layers 5 too, the axes
    cannot be told apart and each item stands for itself."""
    runs = grid_runs(noisy(), drop=(10, 11))
    a = analyse(runs, 0.05)
    assert not a["strata"].pairs and a["strata"].axes
    assert {r["term"] for r in a["interactions"]} == {"epochs x hidden_layers",
                                                        "epochs x hidden_units",
                                                        "epochs x batch_size"}
    confounded = grid_runs(noisy(), drop=(1, 2, 3, 5, 6, 7, 9, 10, 11))  # items 0, 4, 8 left
    a = analyse(confounded, 0.05)
    assert a["strata"].axes == {} and [r["axis"] for r in a["axes"]] == ["epochs"]
