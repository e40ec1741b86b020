"""The search's ranking figure (fmnist_mlp/selection/figure.py): a PNG of the configurations in
the given order, with their intervals and the possibly-best set marked."""

import pytest

from fmnist_mlp.selection import figure

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("values", [[0.86, 0.88, 0.87], [0.5, 0.5], [0.0]])
def test_ranking_draws_close_equal_and_single_values(tmp_path, values):
    path = tmp_path / "r.png"
    figure.ranking(path, [f"config {i}" for i in range(len(values))], values, "acc", "t")
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5_000


def test_ranking_with_intervals_keeps_the_given_order(tmp_path, monkeypatch):
    """Bars in rank order (the best first, on top), with their intervals; not sorted again, so a
    winner chosen on a tie-break stays on top."""
    drawn = {}
    real_barh = figure.plt.Axes.barh

    def barh(self, y, width, **kwargs):
        drawn.update(width=list(width), color=kwargs["color"], xerr=kwargs.get("xerr"))
        return real_barh(self, y, width, **kwargs)

    monkeypatch.setattr(figure.plt.Axes, "barh", barh)
    path = tmp_path / "r.png"
    figure.ranking(path, ["best", "tie", "worse"], [0.88, 0.88, 0.80], "acc", "t",
                     errors=[0.01, 0.02, 0.005], possibly_best=[True, True, False], alpha=0.05)
    assert path.read_bytes()[:8] == PNG
    assert drawn["width"] == [0.80, 0.88, 0.88]  # bottom to top
    assert list(drawn["color"]) == ["tab:gray", "#f7c48f", "tab:orange"]
    assert list(drawn["xerr"]) == [0.005, 0.02, 0.01]
