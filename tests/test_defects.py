"""Tests that kill the defects a hand-run mutation pass found the suite blind to: each asserts a
value a wrong implementation (named in its docstring) would change."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import net
from test_search import fake_item

from fmnist_mlp.core.data import CLASS_NAMES
from fmnist_mlp.core.grid import Trial
from fmnist_mlp.core.metrics import classification_report, no_better_than_chance
from fmnist_mlp.numpy_mlp import gradcheck, landscape
from fmnist_mlp.numpy_mlp.mlp import evaluate, init_params, layer_slices, loss_and_grad
from fmnist_mlp.numpy_mlp.sgd import sgd
from fmnist_mlp.selection.select import select


def problem(rng, n=24, sizes=(5, 4, 3), dtype=np.float64):
    X = rng.normal(size=(n, sizes[0])).astype(dtype)  # (N, d)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]  # (N, C)
    return X, Y


def test_a_wrong_bias_gradient_is_flagged_for_its_layer_alone(rng, monkeypatch):
    """A gradient correct but for one layer's biases: that layer's error is large, the others'
    tiny (a per-layer slice that leaves the biases out would miss it)."""
    spec = net((5, 4, 3), activation="tanh")
    X, Y = problem(rng)
    theta = init_params(spec, rng)
    (_, bias0), _ = layer_slices(spec.sizes)

    def wrong(t, X, Y, spec, l2):
        loss, grad = loss_and_grad(t, X, Y, spec, l2)
        grad = grad.copy()
        grad[bias0] += 0.05  # (4,)
        return loss, grad

    monkeypatch.setattr(gradcheck, "loss_and_grad", wrong)
    result = gradcheck.check_gradient(theta, X, Y, spec, l2=1e-3)
    first, second = result.layer_relative_errors
    assert first > 1e-2 and second < 1e-7, result.layer_relative_errors


def hand_sgd(theta, X, Y, spec, *, epochs, batch_size, lr, l2, seed):
    """SGD written out step by step: a fresh permutation every epoch; theta after every step."""
    rng, thetas = np.random.default_rng(seed), [theta.copy()]
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for first in range(0, len(X), batch_size):
            batch = order[first:first + batch_size]
            thetas.append(thetas[-1] - lr * loss_and_grad(thetas[-1], X[batch], Y[batch], spec,
                                                           l2)[1])
    return thetas


def test_the_trajectory_is_the_weights_at_each_recorded_step(rng):
    """Every row of the trajectory against an independent rerun stopped at its step (3 epochs of
    3 steps, a snapshot every 2 steps): a snapshot stored without a copy, or a shuffle only in
    the first epoch, changes rows between the first and the last."""
    spec = net((5, 4, 3))
    X, Y = problem(rng)
    theta = init_params(spec, rng)
    result = sgd(theta, X, Y, spec, epochs=3, batch_size=8, learning_rate=0.1, l2=1e-3,
                 rng=np.random.default_rng(7), snapshot_every=2, progress=False)
    assert result.trajectory_step.tolist() == [0, 2, 3, 4, 6, 8, 9]
    thetas = hand_sgd(theta, X, Y, spec, epochs=3, batch_size=8, lr=0.1, l2=1e-3, seed=7)
    for row, step in zip(result.trajectory, result.trajectory_step):
        np.testing.assert_allclose(row, thetas[step], rtol=1e-12, atol=1e-14)
    assert len({row.tobytes() for row in result.trajectory}) == 7  # no two rows alike


def test_two_epochs_of_softmax_regression_by_hand():
    """No hidden layer: the gradient of the mean cross-entropy plus l2 ||W||^2 is
    X^T (softmax(XW + b) - Y) / N + 2 l2 W and 1^T (softmax - Y) / N; two full-batch steps."""
    spec = net((2, 2))
    X = np.array([[1.0, 2.0], [0.5, -1.0], [-1.5, 0.5]])  # (3, 2)
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # (3, 2)
    W, b = np.array([[0.1, -0.2], [0.3, 0.0]]), np.array([0.05, -0.05])
    theta = np.concatenate([W.ravel(), b])
    lr, l2 = 0.5, 0.01
    for _ in range(2):
        logits = X @ W + b
        P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        W, b = W - lr * (X.T @ (P - Y) / 3 + 2 * l2 * W), b - lr * (P - Y).mean(axis=0)
    result = sgd(theta, X, Y, spec, epochs=2, batch_size=3, learning_rate=lr, l2=l2,
                 rng=np.random.default_rng(0), progress=False)
    np.testing.assert_allclose(result.theta, np.concatenate([W.ravel(), b]), rtol=1e-13)


@pytest.mark.parametrize("accuracy, chance", [(0.1284, True), (0.1290, False)])
def test_the_chance_threshold_is_three_binomial_standard_errors(accuracy, chance):
    """1 000 examples, 10 classes: 0.1 + 3 sqrt(0.1 x 0.9 / 1000) = 0.12846; with sqrt(p/n)
    (0.13) 0.1290 would be at chance too."""
    assert no_better_than_chance(accuracy, 1000, 10) == chance


@pytest.mark.parametrize("loss, diverged", [(150.0, False), (230.0, False), (231.0, True)])
def test_the_divergence_limit_is_100_times_ln_classes(tmp_path, loss, diverged):
    """For 10 classes the limit is 100 ln 10 = 230.26 (100 log10 10 = 100 would call 150
    diverged)."""
    from fmnist_mlp.keras_search.train import Checkpoints

    callback = Checkpoints(tmp_path, epochs=(5,), seed=0, classes=10)

    class Model:
        stop_training = False

    callback.set_model(Model())
    callback.on_epoch_begin(0)
    callback.on_epoch_end(0, {"loss": loss, "val_loss": 1.0})
    assert (callback.diverged is not None) is diverged
    assert callback.model.stop_training is diverged


def test_per_class_accuracy_is_recall():
    """Class 0: 3 examples, 2 predicted right (recall 2/3); 2 other examples predicted 0
    (precision would be 2/4)."""
    labels = np.array([0, 0, 0, 1, 2] + list(range(3, 10)))  # (12,)
    predicted = np.array([0, 0, 5, 0, 0] + list(range(3, 10)))  # (12,)
    log_probs = np.log(np.full((12, 10), 0.01))
    log_probs[np.arange(12), predicted] = np.log(0.91)
    report = classification_report(log_probs, labels)
    assert report["per_class_accuracy"][CLASS_NAMES[0]] == pytest.approx(2 / 3)
    assert report["per_class_accuracy"][CLASS_NAMES[1]] == 0.0
    assert report["test_accuracy"] == pytest.approx(9 / 12)


def test_prepare_stratifies_and_normalises(tmp_path):
    """200 training images, 20 a class, the last pixel holding the label: the validation split
    (a quarter) holds 5 of each class; x / 255 - 0.5 exactly; one-hot rows match the labels."""
    from fmnist_mlp.dataset.idx import to_idx
    from fmnist_mlp.dataset.prepare import prepare

    labels = np.repeat(np.arange(10, dtype=np.uint8), 20)  # (200,) sorted: unstratified fails
    images = np.zeros((200, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(200) % 256
    images[:, 27, 27] = labels
    for prefix, n in (("train", 200), ("t10k", 20)):
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(to_idx(images[:n]))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(to_idx(labels[:n]))
    splits = prepare(tmp_path, scale=255.0, offset=-0.5, val_fraction=0.25, seed=3)
    val = splits["val"]
    assert np.bincount(val.labels, minlength=10).tolist() == [5] * 10
    assert np.bincount(splits["train"].labels, minlength=10).tolist() == [15] * 10
    first = (val.X[:, 0] + 0.5) * 255  # (50,) the image indices back
    assert np.allclose(first, np.round(first)) and set(np.round(first).astype(int)) <= set(
        range(200))
    expected = labels[np.round(first).astype(int)].astype(np.float32) / np.float32(255) - 0.5
    np.testing.assert_array_equal(val.X[:, -1], expected.astype(np.float32))
    assert val.X.dtype == np.float32 and val.X.min() == np.float32(-0.5)
    np.testing.assert_array_equal(val.Y.argmax(axis=1), labels[np.round(first).astype(int)])


def test_a_non_square_landscape_grid_holds_the_loss_at_its_points(rng):
    """Axes of 5 and 3 values: cell (i, j) of the grid is the loss at (A[j], B[i]) (a transposed
    meshgrid puts another point's loss there; a square grid would not show it). tanh: no tie
    for the top logit, which plane_loss counts as correct and evaluate does not."""
    spec = net((5, 4, 3), activation="tanh")
    X, Y = problem(rng)
    trajectory = np.stack([init_params(spec, np.random.default_rng(s)) for s in range(4)])
    plane = landscape.fit_plane(trajectory, spec)
    A, B = np.linspace(-1, 1, 5), np.linspace(-0.5, 2, 3)
    loss, accuracy = landscape.loss_grid(plane, spec, X, Y, A, B)
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
    plane = landscape.Plane(np.zeros(12), np.eye(12)[:2], np.ones(2))
    fit = landscape.trajectory_fit(plane, trajectory, spec, X, Y)
    np.testing.assert_allclose(fit.off_plane, [0, 0, 2 / 7], atol=1e-15)
    np.testing.assert_allclose(fit.coords, trajectory[:, :2], atol=1e-15)


def test_the_select_stage_ranks_three_known_configurations(tmp_path, monkeypatch):
    """Three fake items whose mean accuracies over 3 seeds rank B > C > A: select picks B, names
    C the runner-up (not the last, A), and writes C's p-value."""
    import yaml

    trials = [Trial(3, units, 0.05, 64, 0.001, "relu") for units in (30, 40, 50)]
    scores = {30: [0.80, 0.81, 0.79], 40: [0.86, 0.88, 0.87], 50: [0.84, 0.85, 0.85]}
    models, curves = tmp_path / "models/search", tmp_path / "plots/search"
    curves.mkdir(parents=True)
    for trial in trials:
        item = fake_item(models, trial, {40: [(s, 0.4) for s in scores[trial.hidden_units]]},
                         seeds=(0, 1, 2))
        for seed in (0, 1, 2):
            (item / f"model_seed{seed}_e40.keras").write_bytes(b"model")
        (curves / f"{trial.name}.csv").write_text("epoch,train_accuracy,val_accuracy\n"
                                                  "1,0.5,0.5\n")
    params = {"search": {"hidden_layers": [3], "hidden_units": [30, 40, 50],
                         "learning_rate": [0.05], "batch_size": [64], "l2": [0.001],
                         "activation": ["relu"], "epochs": [40], "seeds": [0, 1, 2],
                         "alpha": 0.05}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    outputs = ["metrics.json", "report.json", "results.csv", "results.png", "best",
               "overlay.csv"]
    monkeypatch.chdir(tmp_path)  # the stage reads params.yaml where it runs, as under dvc
    select(Path("models/search"), Path("plots/search"), *map(Path, outputs))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["best"]["hidden_units"] == 40
    assert report["runner_up"]["label"] == "units 50"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val_accuracy"] == pytest.approx(0.87)
    from scipy import stats

    p = stats.ttest_rel(scores[40], scores[50]).pvalue  # 0.0198: B against C over the seeds
    assert math.isclose(metrics["p_runner_up"], p, rel_tol=1e-5)
    assert metrics["p_runner_up"] == report["runner_up"]["p_vs_best"]
