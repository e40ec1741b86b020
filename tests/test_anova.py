"""The least-squares core of the grid's statistics (fmnist_mlp/selection/anova.py) against
certified values: NIST's StRD ANOVA data sets (as scipy ships them for its own tests) and a
textbook two-way factorial."""

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import scipy

from fmnist_mlp.selection.anova import contrast, fit, interaction, sum_code, term_test

NIST = Path(scipy.__file__).parent / "stats/tests/data/nist_anova"


def certified(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """The groups and the responses less their first value (subtracted in decimal: the hardest
    sets carry 13 constant leading digits, more than a float64 holds beside the rest), and the
    certified values."""
    lines = (NIST / f"{name}.dat").read_text().splitlines()
    between = next(ln for ln in lines if ln.startswith("Between")).split()[-4:]
    within = next(ln for ln in lines if ln.startswith("Within")).split()[-3:]
    values = {"df_between": int(between[0]), "ss_between": float(between[1]),
              "ms_between": float(between[2]), "F": float(between[3]),
              "df_within": int(within[0]), "ss_within": float(within[1]),
              "ms_within": float(within[2]),
              "r2": float(next(ln for ln in lines if "Certified R-Squared" in ln).split()[-1]),
              "sd": float(next(ln for ln in lines[40:50] if "Deviation" in ln).split()[-1])}
    data = [ln.split() for ln in lines[60:] if ln.strip()]
    first = Decimal(data[0][1])
    group = np.array([int(g) for g, _ in data])
    y = np.array([float(Decimal(v) - first) for _, v in data])
    return group, y, values


@pytest.mark.parametrize("name", ["SiRstv", "SmLs01", "SmLs02", "SmLs03", "AtmWtAg", "SmLs04",
                                  "SmLs05", "SmLs06", "SmLs07", "SmLs08", "SmLs09"])
def test_one_way_anova_matches_nists_certified_values(name):
    group, y, cert = certified(name)
    levels = tuple(np.unique(group).tolist())
    model = fit(y, [("intercept", np.ones(len(y))), ("group", sum_code(group, levels))])
    t = term_test(model, "group")
    rtol = 1e-9
    assert t["df"] == cert["df_between"] and model.df_resid == cert["df_within"]
    assert t["ss"] == pytest.approx(cert["ss_between"], rel=rtol)
    assert t["ms"] == pytest.approx(cert["ms_between"], rel=rtol)
    assert t["F"] == pytest.approx(cert["F"], rel=rtol)
    assert model.results.ssr == pytest.approx(cert["ss_within"], rel=rtol)
    assert model.mse == pytest.approx(cert["ms_within"], rel=rtol)
    assert np.sqrt(model.mse) == pytest.approx(cert["sd"], rel=rtol)
    assert model.results.rsquared == pytest.approx(cert["r2"], rel=rtol)


# Montgomery, Design and Analysis of Experiments, Example 5.1 (battery life, hours): material
# type (3) x temperature (15, 70, 125 F), 4 replicates. Its ANOVA: material SS 10 683.72 (2 df),
# temperature 39 118.72 (2), interaction 9 613.78 (4), error 18 230.75 (27).
BATTERY = {(1, 15): [130, 155, 74, 180], (1, 70): [34, 40, 80, 75], (1, 125): [20, 70, 82, 58],
           (2, 15): [150, 188, 159, 126], (2, 70): [136, 122, 106, 115],
           (2, 125): [25, 70, 58, 45], (3, 15): [138, 110, 168, 160],
           (3, 70): [174, 120, 150, 139], (3, 125): [96, 104, 82, 60]}


def battery(drop: int = 0):
    cells = [(m, t, v) for (m, t), values in BATTERY.items() for v in values]
    cells = cells[drop:]
    material, temp, y = (np.array(c) for c in zip(*cells))
    M, T = sum_code(material, (1, 2, 3)), sum_code(temp, (15, 70, 125))
    return y.astype(float), material, temp, fit(y.astype(float), [
        ("intercept", np.ones(len(y))), ("material", M), ("temperature", T),
        ("material x temperature", interaction(M, T))])


def test_two_way_factorial_matches_the_textbook():
    _, _, _, model = battery()
    expected = {"material": (2, 10683.72, 7.91), "temperature": (2, 39118.72, 28.97),
                "material x temperature": (4, 9613.78, 3.56)}
    for term, (df, ss, F) in expected.items():
        t = term_test(model, term)
        assert (t["df"], round(t["ss"], 2), round(t["F"], 2)) == (df, ss, F), term
    assert (model.df_resid, round(model.results.ssr, 2)) == (27, 18230.75)


def test_a_contrast_is_the_cell_means_difference_with_its_t_interval():
    """Material 3 against material 1, averaged over the temperatures: the difference of their
    cell means (each weighing the same), standard error sqrt(MSE (1/12 + 1/12)), t on 27 df."""
    y, material, temp, model = battery()
    X = model.results.model.exog  # (36, 9)
    L = X[material == 3].mean(axis=0) - X[material == 1].mean(axis=0)  # (9,)
    c = contrast(model, L, alpha=0.05)
    assert c["estimate"] == pytest.approx(y[material == 3].mean() - y[material == 1].mean())
    se = np.sqrt(18230.75 / 27 * (2 / 12))
    assert c["se"] == pytest.approx(se, rel=1e-6) and c["df"] == 27
    half = scipy.stats.t.ppf(0.975, 27) * se
    assert (c["low"], c["high"]) == pytest.approx((c["estimate"] - half, c["estimate"] + half))


def test_unbalanced_data_test_the_averaged_effect_not_the_weighted_one():
    """Three observations fewer (material 1 at 15 F keeps one): the sum-coded contrast is the
    difference of the two materials' cell-mean averages (each cell weighing the same), not of
    their raw means, which would weigh the remaining 15 F observation three times less."""
    y, material, temp, model = battery(drop=3)
    X = model.results.model.exog
    grid = [(m, t) for m in (1, 3) for t in (15, 70, 125)]
    rows = {(m, t): X[(material == m) & (temp == t)][0] for m, t in grid}
    L = sum(rows[3, t] - rows[1, t] for t in (15, 70, 125)) / 3
    cells = {(m, t): y[(material == m) & (temp == t)].mean() for m, t in grid}
    expected = sum(cells[3, t] - cells[1, t] for t in (15, 70, 125)) / 3
    assert contrast(model, L, 0.05)["estimate"] == pytest.approx(expected)
    assert expected != pytest.approx(y[material == 3].mean() - y[material == 1].mean(), abs=1)


def test_sum_code_and_interaction_columns():
    codes = sum_code(["b", "a", "c", "a"], ("a", "b", "c"))
    assert codes.tolist() == [[0, 1], [1, 0], [-1, -1], [1, 0]]
    pair = interaction(codes, np.array([[1.0], [-1.0], [1.0], [-1.0]]))
    assert pair.tolist() == [[0, 1], [-1, 0], [-1, -1], [-1, 0]]
