import numpy as np
import pytest

from fmnist_mlp.landscape import figures
from fmnist_mlp.selection import figure

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("values", [[0.86, 0.88, 0.87], [0.5, 0.5], [0.0]])
def test_ranking_draws_close_equal_and_single_values(tmp_path, values):
    path = tmp_path / "r.png"
    figure.ranking(path, [f"config {i}" for i in range(len(values))], values, "acc", "t")
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5_000


@pytest.mark.parametrize("corner, azimuth", [((0, 0), -135.0), ((0, -1), -45.0),
                                             ((-1, -1), 45.0), ((-1, 0), 135.0)])
def test_surface_is_seen_from_the_side_of_its_minimum(corner, azimuth):
    """The camera sits on the minimum's side, so no ridge stands between it and the viewer."""
    A, B = np.linspace(-1, 3, 9), np.linspace(0, 1, 5)
    loss = np.ones((5, 9))  # rows follow B
    loss[corner] = 0.0
    assert figures.view_azimuth(A, B, loss) == pytest.approx(azimuth)


def test_surface_and_contour_draw(tmp_path):
    A, B = np.linspace(-1, 1, 20), np.linspace(-1, 1, 15)
    loss = (A[None, :] - 0.5) ** 2 + B[:, None] ** 2 + 0.5  # (15, 20)
    coords = np.array([[-0.8, 0.8], [0.0, 0.3], [0.45, 0.05]])  # (T, 2)
    figures.surface(tmp_path / "s.png", A, B, loss, coords, np.array([1.9, 0.9, 0.5]),
                     ("PC1", "PC2"))
    figures.contour(tmp_path / "c.png", A, B, loss, coords, ("PC1", "PC2"), "t")
    for name in ("s.png", "c.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG


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
