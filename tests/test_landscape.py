"""The loss landscape (fmnist_mlp/landscape/plane.py): the fast loss grid against the per-point
forward pass, the PCA, random or filter-normalised plane and the variance it explains, the
trajectory's fit to it and its distance off the plane, the grid's axes; and its figures
rendered."""

import numpy as np
import pytest
from conftest import ACTIVATION_NAMES, net, problem

from fmnist_mlp.landscape import figures
from fmnist_mlp.landscape.plane import (
    Plane,
    filter_normalised_directions,
    fit_plane,
    grid_axes,
    loss_grid,
    plane_loss,
    plane_loss_naive,
    trajectory_fit,
)
from fmnist_mlp.numpy_mlp.mlp import evaluate, forward, init_params, num_params, unpack


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("sizes", [(5, 3), (6, 4, 3), (7, 9, 5, 4), (4, 3, 6, 2, 5),
                                   (5, 9, 9, 10), (4, 3, 3, 3, 3, 3, 2)])
# (5, 9, 9, 10): a hidden and the output array alike; the last: five hidden layers alike
def test_fast_evaluator_equals_naive(rng, sizes, activation):
    """The tiled evaluator against the per-point forward pass, for every activation: the
    activation is the spec's in both (a landscape of a tanh model evaluates tanh)."""
    P = num_params(sizes)
    plane = Plane(rng.normal(size=P), rng.normal(size=(2, P)), np.zeros(2))
    X, Y = problem(rng, n=40, sizes=sizes)
    ab = rng.uniform(-1, 1, size=(37, 2))  # (G, 2)
    spec = net(sizes, activation)
    fast_loss, fast_acc = plane_loss(plane, spec, X, Y, ab, chunk_mb=0.01)  # several chunks
    naive_loss, naive_acc = plane_loss_naive(plane, spec, X, Y, ab)
    np.testing.assert_allclose(fast_loss, naive_loss, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(fast_acc, naive_acc)


def test_fast_evaluator_over_several_sample_blocks_and_threads(rng):
    sizes = (3, 4, 3)
    P = num_params(sizes)
    plane = Plane(rng.normal(size=P), rng.normal(size=(2, P)), np.zeros(2))
    X, Y = problem(rng, n=9000, sizes=sizes)  # three sample blocks of 3 000
    ab = rng.uniform(-1, 1, size=(7, 2))  # (G, 2)
    one = plane_loss(plane, net(sizes), X, Y, ab, chunk_mb=0.05, threads=1)
    three = plane_loss(plane, net(sizes), X, Y, ab, chunk_mb=0.05, threads=3)
    for fast, naive in zip(one, plane_loss_naive(plane, net(sizes), X, Y, ab)):
        np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-10)
    for a, b in zip(one, three):  # the thread count does not change a bit of the result
        np.testing.assert_array_equal(a, b)


def test_fast_evaluator_with_huge_logits(rng):
    """Logits beyond exp's range take the max-shifted logsumexp and stay exact."""
    sizes = (6, 5, 3)
    P = num_params(sizes)
    plane = Plane(rng.normal(size=P) * 30, rng.normal(size=(2, P)), np.zeros(2))
    X, Y = problem(rng, n=40, sizes=sizes)
    X *= 30
    ab = rng.uniform(-1, 1, size=(5, 2))  # (G, 2)
    fast_loss, fast_acc = plane_loss(plane, net(sizes), X, Y, ab)
    naive_loss, naive_acc = plane_loss_naive(plane, net(sizes), X, Y, ab)
    logits = np.stack([forward(plane.point(p), X, net(sizes)) for p in ab])  # (G, N, C)
    assert logits.max() > 700  # really out of exp's range
    np.testing.assert_allclose(fast_loss, naive_loss, rtol=1e-12)
    np.testing.assert_array_equal(fast_acc, naive_acc)


def test_planar_trajectory_is_reproduced_exactly(rng):
    sizes = (6, 5, 3)
    P = num_params(sizes)
    c, d = rng.normal(size=P), rng.normal(size=(2, P))
    coords = rng.normal(size=(8, 2))
    trajectory = c + coords @ d  # (T, P) lies in a plane
    X, Y = problem(rng, n=40, sizes=sizes)
    plane = fit_plane(trajectory, net(sizes))
    fit = trajectory_fit(plane, trajectory, net(sizes), X, Y)
    np.testing.assert_allclose(plane.point(fit.coords), trajectory, atol=1e-10)
    np.testing.assert_allclose(fit.true_loss, fit.plane_loss, atol=1e-10)
    assert fit.off_plane.max() < 1e-10
    assert plane.explained_variance.sum() == pytest.approx(1.0)


def test_off_plane_trajectory_reports_a_gap(rng):
    sizes = (6, 5, 3)
    trajectory = rng.normal(size=(6, num_params(sizes)))  # 6 points, 5-dimensional spread
    X, Y = problem(rng, n=40, sizes=sizes)
    fit = trajectory_fit(fit_plane(trajectory, net(sizes)), trajectory, net(sizes), X, Y)
    assert fit.off_plane.max() > 0.01
    assert np.abs(fit.true_loss - fit.plane_loss).max() > 1e-3


@pytest.mark.parametrize("center", ["mean", "final"])
@pytest.mark.parametrize("directions", ["pca", "random"])
def test_both_centres_and_direction_kinds(rng, center, directions):
    sizes = (6, 5, 3)
    P = num_params(sizes)
    trajectory = init_params(net(sizes), rng) + np.cumsum(rng.normal(size=(10, P)) * 0.1, axis=0)
    plane = fit_plane(trajectory, net(sizes), center, directions, np.random.default_rng(0))
    expected_center = trajectory.mean(axis=0) if center == "mean" else trajectory[-1]
    np.testing.assert_allclose(plane.center, expected_center)
    assert plane.directions.shape == (2, P)
    assert np.all((0 <= plane.explained_variance) & (plane.explained_variance <= 1))
    X, Y = problem(rng, n=40, sizes=sizes)
    loss, _ = plane_loss(plane, net(sizes), X, Y, np.zeros((1, 2)))
    assert loss[0] == pytest.approx(evaluate(plane.center, X, Y, net(sizes))[0], abs=1e-12)


def test_plane_fit_is_deterministic(rng):
    sizes = (60, 20, 10)  # 1 430 parameters: PCA's "auto" solver would go randomized here
    trajectory = np.cumsum(rng.normal(size=(21, num_params(sizes))), axis=0)  # (T, P)
    first, second = (fit_plane(trajectory, net(sizes)) for _ in range(2))
    np.testing.assert_array_equal(first.directions, second.directions)
    np.testing.assert_array_equal(first.explained_variance, second.explained_variance)


def test_filter_normalised_directions_match_filter_norms(rng):
    sizes = (6, 5, 3)
    theta = init_params(net(sizes), rng)
    d = filter_normalised_directions(theta, net(sizes), rng)
    for (Wd, bd), (W, _) in zip(unpack(d[0], sizes), unpack(theta, sizes)):
        np.testing.assert_allclose(np.linalg.norm(Wd, axis=0), np.linalg.norm(W, axis=0))
        assert np.all(bd == 0)


def test_grid_axes_widen_the_range():
    a, b = grid_axes(np.array([[0.0, 1.0], [10.0, 3.0]]), 5, 0.1)
    assert (a[0], a[-1], len(a)) == (-1.0, 11.0, 5)
    np.testing.assert_allclose((b[0], b[-1]), (0.8, 3.2))


def test_grid_axes_open_an_axis_the_trajectory_does_not_move_along():
    a, b = grid_axes(np.array([[-1.0, 3e-16], [1.0, -2e-16]]), 5, 0.1)  # two snapshots
    np.testing.assert_allclose((a[0], a[-1]), (-1.2, 1.2))
    np.testing.assert_allclose((b[0], b[-1]), (-1.0, 1.0), atol=1e-15)
    a, b = grid_axes(np.zeros((1, 2)), 3, 0.1)  # a single point
    np.testing.assert_allclose((a[0], a[-1], b[0], b[-1]), (-0.5, 0.5, -0.5, 0.5))


def test_rendering_writes_non_empty_pngs(tmp_path, rng):
    from fmnist_mlp.landscape import figures

    A, B = np.linspace(-1, 1, 12), np.linspace(-2, 2, 10)
    loss = np.add.outer(B ** 2, A ** 2)  # (len(B), len(A))
    coords = np.array([[-0.8, 1.5], [-0.3, 0.6], [0.0, 0.1]])
    labels = figures.axis_labels(np.array([0.795, 0.12]), "pca")
    assert labels == ("PC1 (79.5 %)", "PC2 (12.0 %)")
    figures.surface(tmp_path / "s.png", A, B, loss, coords, np.ones(3), labels)
    figures.contour(tmp_path / "c.png", A, B, loss, coords, labels, "t")
    for name in ("s.png", "c.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_another_activation_gives_another_landscape(rng):
    sizes = (6, 5, 3)
    P = num_params(sizes)
    plane = Plane(rng.normal(size=P), rng.normal(size=(2, P)), np.zeros(2))
    X, Y = problem(rng, n=40, sizes=sizes)
    ab = rng.uniform(-1, 1, size=(5, 2))
    relu, tanh = (plane_loss(plane, net(sizes, a), X, Y, ab)[0] for a in ("relu", "tanh"))
    assert np.abs(relu - tanh).min() > 1e-6


def test_a_non_square_landscape_grid_holds_the_loss_at_its_points(rng):
    """Axes of 5 and 3 values: cell (i, j) of the grid is the loss at (A[j], B[i]) (a transposed
    meshgrid puts another point's loss there; a square grid would not show it). tanh: no tie
    for the top logit, which plane_loss counts as correct and evaluate does not."""
    spec = net((5, 4, 3), activation="tanh")
    X, Y = problem(rng)
    trajectory = np.stack([init_params(spec, np.random.default_rng(s)) for s in range(4)])
    plane = fit_plane(trajectory, spec)
    A, B = np.linspace(-1, 1, 5), np.linspace(-0.5, 2, 3)
    loss, accuracy = loss_grid(plane, spec, X, Y, A, B)
    assert loss.shape == accuracy.shape == (3, 5)
    for i, j in [(0, 0), (0, 4), (2, 1), (1, 3)]:
        expected = evaluate(plane.point(np.array([A[j], B[i]])), X, Y, spec)
        assert (loss[i, j], accuracy[i, j]) == pytest.approx(expected, rel=1e-12)


def test_off_plane_is_the_distance_over_the_trajectorys_length(rng):
    """A trajectory (0,0,0,...) -> (3,4,0,...) -> (3,4,2,...) and the plane of the first two
    coordinates: length 5 + 2 = 7, the last point 2 off the plane, so off_plane is
    [0, 0, 2/7] (norms taken down the columns would give 3 + 4 + 2 = 9)."""
    spec = net((2, 2, 2))  # 12 parameters
    X, Y = problem(rng, sizes=(2, 2, 2))
    trajectory = np.zeros((3, spec.num_params))  # (3, 12)
    trajectory[1:, :2], trajectory[2, 2] = (3, 4), 2
    plane = Plane(np.zeros(12), np.eye(12)[:2], np.ones(2))
    fit = trajectory_fit(plane, trajectory, spec, X, Y)
    np.testing.assert_allclose(fit.off_plane, [0, 0, 2 / 7], atol=1e-15)
    np.testing.assert_allclose(fit.coords, trajectory[:, :2], atol=1e-15)


def test_off_plane_of_a_short_or_still_trajectory(rng):
    """A trajectory half a unit long, 0.1 off the plane at its end: 0.1 / 0.5; one that does
    not move: its distances as they are (0), not 0 / 0."""
    spec = net((2, 2, 2))
    X, Y = problem(rng, sizes=(2, 2, 2))
    plane = Plane(np.zeros(12), np.eye(12)[:2], np.ones(2))
    short = np.zeros((2, 12))
    short[1, 0], short[1, 2] = np.sqrt(0.24), 0.1  # length sqrt(0.24 + 0.01) = 0.5
    np.testing.assert_allclose(trajectory_fit(plane, short, spec, X, Y).off_plane, [0, 0.2],
                               atol=1e-12)
    still = trajectory_fit(plane, np.zeros((3, 12)), spec, X, Y).off_plane
    assert still.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # empty classes, a still trajectory
def test_the_plane_explains_the_variance_it_holds(rng):
    """A trajectory moving in the first three coordinates: the PCA plane's explained shares are
    its two principal axes' variances over the total, and the default centre is the mean."""
    spec = net((2, 2, 2))
    trajectory = np.zeros((5, spec.num_params))  # (5, 12)
    trajectory[:, 0] = [0, 4, 8, 12, 16]
    trajectory[:, 1] = [0, 1, -1, 1, -1]
    trajectory[:, 2] = [0, 0.1, 0, -0.1, 0]
    plane = fit_plane(trajectory, spec)
    dev = trajectory - trajectory.mean(axis=0)
    total = (dev ** 2).sum()
    s = np.linalg.svd(dev, compute_uv=False)  # the principal axes' spreads
    np.testing.assert_allclose(plane.explained_variance, s[:2] ** 2 / total, rtol=1e-10)
    np.testing.assert_array_equal(plane.center, trajectory.mean(axis=0))
    small = fit_plane(trajectory / 100, spec)  # a total squared deviation below 1
    np.testing.assert_allclose(small.explained_variance, plane.explained_variance, rtol=1e-10)
    still = fit_plane(np.zeros((3, spec.num_params)), spec)
    assert still.explained_variance.tolist() == [0.0, 0.0]


def test_filter_directions_come_from_the_last_point_and_a_fixed_seed(rng):
    spec = net((2, 3, 2))
    trajectory = rng.normal(size=(4, spec.num_params))  # (4, P)
    plane = fit_plane(trajectory, spec, center="last", directions="filter")
    expected = filter_normalised_directions(trajectory[-1], spec, np.random.default_rng(0))
    np.testing.assert_array_equal(plane.directions, expected)
    np.testing.assert_array_equal(plane.center, trajectory[-1])


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
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
