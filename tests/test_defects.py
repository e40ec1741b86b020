"""Tests that kill the defects a hand-run mutation pass found the suite blind to: each asserts a
value a wrong implementation (named in its docstring) would change."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import fake_item, net
from scipy import stats

from fmnist_mlp.core.data import CLASS_NAMES
from fmnist_mlp.core.errors import ConfigError, DataError, DivergenceError, StudyError
from fmnist_mlp.evaluation.metrics import classification_report, no_better_than_chance
from fmnist_mlp.gradcheck import check as gradcheck
from fmnist_mlp.grid.search import Trial
from fmnist_mlp.landscape import plane as landscape
from fmnist_mlp.numpy_mlp.mlp import evaluate, init_params, layer_slices, loss_and_grad
from fmnist_mlp.selection import figure
from fmnist_mlp.selection.select import select
from fmnist_mlp.sgd.minibatch import sgd


def problem(rng, n=24, sizes=(5, 4, 3), dtype=np.float64):
    X = rng.normal(size=(n, sizes[0])).astype(dtype)  # (N, d)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]  # (N, C)
    return X, Y


def write_raw(raw_dir, prefix, images, labels):
    """``prefix``'s IDX files (images, labels) as the fetch stage leaves them."""
    from fmnist_mlp.dataset.idx import to_idx

    (raw_dir / f"{prefix}-images-idx3-ubyte").write_bytes(to_idx(images))
    (raw_dir / f"{prefix}-labels-idx1-ubyte").write_bytes(to_idx(labels))


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
    from fmnist_mlp.dataset.prepare import prepare

    labels = np.repeat(np.arange(10, dtype=np.uint8), 20)  # (200,) sorted: unstratified fails
    images = np.zeros((200, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(200) % 256
    images[:, 27, 27] = labels
    for prefix, n in (("train", 200), ("t10k", 20)):
        write_raw(tmp_path, prefix, images[:n], labels[:n])
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
    assert val.Y.dtype == np.float32
    test = splits["test"]  # untouched, in file order
    np.testing.assert_array_equal(test.X[:, 0], (np.arange(20) / np.float32(255) - np.float32(0.5))
                                  .astype(np.float32))
    np.testing.assert_array_equal(test.labels, labels[:20])
    again = prepare(tmp_path, scale=255.0, offset=-0.5, val_fraction=0.25, seed=3)
    other = prepare(tmp_path, scale=255.0, offset=-0.5, val_fraction=0.25, seed=4)
    np.testing.assert_array_equal(again["val"].X, val.X)  # the seed decides the split
    assert not np.array_equal(other["val"].X, val.X)
    small = prepare(tmp_path, scale=255.0, offset=-0.5, val_fraction=0.25, seed=3, subset=100)
    assert len(small["train"].labels) == 75 and len(small["val"].labels) == 25


@pytest.mark.parametrize("subset, fraction, error", [
    (90, 0.2, None),  # leaves 10 out, one of each class
    (91, 0.2, "prepare.subset: expected at most 90"),
    (None, 0.1, None),  # 10 for the validation split, 90 for training
    (100, 0.2, None),  # the whole set: nothing left out to check
    (None, 0.09, "leaves 9 for the val split"),
    (None, 0.91, "leaves 9 for the train split"),
    (None, 0.9, None),
])
def test_split_sizes_at_their_limits(subset, fraction, error):
    """100 images, 10 classes: each split, and what a subset leaves out, needs 10 images."""
    from fmnist_mlp.dataset.prepare import check_split_sizes

    if error is None:
        check_split_sizes(100, subset, fraction)
    else:
        with pytest.raises(ConfigError, match=error):
            check_split_sizes(100, subset, fraction)


def test_a_label_of_10_is_out_of_range(tmp_path):
    from fmnist_mlp.dataset.prepare import read_raw

    images = np.zeros((2, 28, 28), np.uint8)
    write_raw(tmp_path, "t", images, np.array([9, 9], np.uint8))
    assert read_raw(tmp_path, "t")[1].tolist() == [9, 9]
    write_raw(tmp_path, "t", images, np.array([9, 10], np.uint8))
    with pytest.raises(DataError, match="label 10 out of range"):
        read_raw(tmp_path, "t")


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


SCORES = {30: [0.80, 0.81, 0.79], 40: [0.86, 0.88, 0.87], 50: [0.84, 0.85, 0.85]}
OUTPUTS = ("metrics.json", "report.json", "results.csv", "results.png", "out/models/best",
           "overlay.csv", "effects.json", "effects.csv")
SELECT = {"margin": 0.005, "mcb_draws": 20000, "mcb_seed": 0}  # params.yaml's select section


@pytest.fixture
def three_items(tmp_path, monkeypatch):
    """Three fake items (3 layers of 30, 40 or 50 units) whose mean accuracies over 3 seeds rank
    40 > 50 > 30, their curves and params.yaml, in ``tmp_path``, the working directory."""
    import yaml

    trials = [Trial(3, units, 0.05, 64, 0.001, "relu") for units in (30, 40, 50)]
    models, curves = tmp_path / "models/search", tmp_path / "plots/search"
    curves.mkdir(parents=True)
    for trial in trials:
        item = fake_item(models, trial, {40: [(s, 0.4) for s in SCORES[trial.hidden_units]]},
                         seeds=(0, 1, 2))
        for seed in (0, 1, 2):
            (item / f"model_seed{seed}_e40.keras").write_bytes(f"model {seed}".encode())
        (curves / f"{trial.name}.csv").write_text("epoch,train_accuracy,val_accuracy\n"
                                                  f"1,0.5,0.{trial.hidden_units}\n")
    params = {"search": {"hidden_layers": [3], "hidden_units": [30, 40, 50],
                         "learning_rate": [0.05], "batch_size": [64], "l2": [0.001],
                         "activation": ["relu"], "epochs": [40], "seeds": [0, 1, 2],
                         "alpha": 0.05}, "select": SELECT}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)  # the stage reads params.yaml where it runs, as under dvc
    return tmp_path


def run_select():
    select(Path("models/search"), Path("plots/search"), *map(Path, OUTPUTS))


def test_the_select_stage_ranks_three_known_configurations(three_items):
    """select picks 40 units, names 50 the runner-up (not the last, 30), and writes every
    output's every field: the report, the metrics, the table, the overlay and the best model's
    files (a key, a value, a seed or a file mixed up changes one of them)."""
    run_select()
    p = stats.ttest_rel(SCORES[40], SCORES[50]).pvalue  # 0.0198: best against runner-up
    p30 = stats.ttest_rel(SCORES[40], SCORES[30]).pvalue
    metrics = json.loads(Path("metrics.json").read_text())
    assert metrics.keys() == {"val_accuracy", "accuracy_std", "val_loss", "seed0_val_accuracy",
                              "possibly_best", "top_effect", "top_effect_ci"}
    # the model (units + seed blocks, one checkpoint): its error mean square by hand, from the
    # two-way table's residuals, 4 degrees of freedom; units 40 against 30: 0.07 +- t sqrt(2 MS/3)
    table = np.array([SCORES[30], SCORES[40], SCORES[50]])  # (units, seed)
    resid = table - table.mean(1, keepdims=True) - table.mean(0, keepdims=True) + table.mean()
    half = stats.t.ppf(0.975, 4) * math.sqrt(2 * (resid ** 2).sum() / 4 / 3)
    assert metrics["possibly_best"] == 1  # 50 trails 40 by 0.0233, more than d se = 0.0142
    assert (metrics["top_effect"], metrics["top_effect_ci"]) == pytest.approx((0.07, half),
                                                                             rel=1e-5)
    assert metrics["val_accuracy"] == pytest.approx(0.87)
    assert metrics["accuracy_std"] == pytest.approx(np.std(SCORES[40], ddof=1), rel=1e-5)
    assert metrics["val_loss"] == pytest.approx(0.4)
    assert math.isclose(json.loads(Path("report.json").read_text())["p_runner_up"], p,
                        rel_tol=1e-5)
    assert metrics["seed0_val_accuracy"] == pytest.approx(0.86)  # seed 0: 40 units best too
    report = json.loads(Path("report.json").read_text())
    assert report["best"] == {
        "hidden_layers": 3, "hidden_units": 40, "learning_rate": 0.05, "batch_size": 64,
        "l2": 0.001, "activation": "relu", "epochs": 40,
        "item": "layers3-units40-lr0.05-batch64-l2_0.001-relu", "label": "units 40",
        "val_accuracy_seeds": pytest.approx(SCORES[40]), "ci95": pytest.approx(
            stats.t.ppf(0.975, 2) * np.std(SCORES[40], ddof=1) / math.sqrt(3), rel=1e-5)}
    assert report["runner_up"] == {"label": "units 50", "val_accuracy": pytest.approx(0.84667,
                                   rel=1e-4), "std": pytest.approx(np.std(SCORES[50], ddof=1),
                                   rel=1e-5), "p_vs_best": pytest.approx(p, rel=1e-5)}
    assert report["verdict"] == ("1 of 3 configuration(s) could be the best (Hsu's MCB, 95% "
                                 "simultaneous): units 40")
    assert report["possibly_best"] == ["units 40"]
    assert report["paired_runner_up"] == (f"distinguishable from the runner-up (units 50): "
                                          f"paired t-test over 3 seeds, p = {p:.3g}, alpha 0.05")
    assert report["not_distinguishable_from_best"] == []
    assert report["single_seed"] == {"seed": 0, "label": "units 40",
                                     "val_accuracy": pytest.approx(0.86)}
    assert {k: report[k] for k in ("seeds", "alpha", "configs", "items", "diverged_items")} == {
        "seeds": [0, 1, 2], "alpha": 0.05, "configs": 3, "items": 3, "diverged_items": 0}
    rows = Path("results.csv").read_text().splitlines()
    assert rows[0] == ("label,hidden_layers,hidden_units,learning_rate,batch_size,l2,activation,"
                       "epochs,val_accuracy,std,ci95,val_loss,possibly_best,mcb_low,mcb_high,"
                       "vs_best_high,equivalence,p_vs_best,distinguishable,val_accuracy_seeds")
    assert [r.split(",")[0] for r in rows[1:]] == ["units 30", "units 40", "units 50"]  # grid
    assert rows[1].endswith(f",{p30:.6g},True,0.8 0.81 0.79")
    assert rows[2].endswith(",1.0,False,0.86 0.88 0.87")  # the best against itself
    best = Path(OUTPUTS[4])
    assert sorted(f.name for f in best.iterdir()) == [
        "config.json", "history.csv", "model_seed0.keras", "model_seed1.keras",
        "model_seed2.keras"]
    assert [(best / f"model_seed{s}.keras").read_bytes() for s in (0, 1, 2)] == [
        b"model 0", b"model 1", b"model 2"]
    assert (best / "history.csv").read_text().endswith("1,0.5,0.40\n")
    assert json.loads((best / "config.json").read_text()) == {
        "hidden_layers": 3, "hidden_units": 40, "learning_rate": 0.05, "batch_size": 64,
        "l2": 0.001, "activation": "relu", "epochs": 40, "seeds": [0, 1, 2]}
    assert Path("overlay.csv").read_text().splitlines() == [
        "epoch,item,rank,val_accuracy", "1,units 40,1,0.4", "1,units 50,2,0.5",
        "1,units 30,3,0.3"]


def test_the_select_stage_draws_the_ranking_it_writes(three_items, monkeypatch):
    """The ranking figure gets the configurations best first, their intervals, which are tied
    with the best, alpha and the single-run pick."""
    drawn = {}
    monkeypatch.setattr(figure, "ranking", lambda path, labels, values, xlabel, title, **kw:
                        drawn.update(path=path, labels=labels, values=values, xlabel=xlabel,
                                     title=title, **kw))
    run_select()
    report = json.loads(Path("report.json").read_text())
    assert drawn["path"] == Path("results.png")
    assert drawn["labels"] == ["units 40", "units 50", "units 30"]
    assert drawn["values"] == pytest.approx([0.87, 0.84667, 0.8], rel=1e-4)
    effects = json.loads(Path("effects.json").read_text())["mcb"]
    # a configuration mean's interval: half the two items' difference variance, on its df (4)
    half = stats.t.ppf(0.975, 4) * effects["se_two_items"] / math.sqrt(2)
    assert drawn["errors"] == pytest.approx([half] * 3, rel=1e-5) and report["best"]["ci95"] > half
    assert drawn["possibly_best"] == [True, False, False]
    assert drawn["alpha"] == 0.05
    assert drawn["marked"] == (0, "the single-run protocol's pick (seed 0)")
    assert drawn["xlabel"] == ("validation accuracy, mean over the seeds with its 95% interval\n"
                               "given these seeds (their shared effect moves every bar alike)")
    assert drawn["title"] == ("Keras grid search: 3 configurations x 3 seeds, best on top\n"
                              "layers 3, lr 0.05, batch 64, l2 0.001, relu, epochs 40 in all")


def test_a_failed_select_leaves_no_output_and_a_rerun_writes_the_same(three_items, monkeypatch):
    """The figure failing last: every output removed, none partial; run twice, the same bytes."""
    def fail(path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device", str(path))

    run_select()
    first = {name: Path(name).read_bytes() for name in OUTPUTS if Path(name).is_file()}
    run_select()  # over its own outputs, as a user rerunning it by hand
    assert {name: Path(name).read_bytes() for name in first} == first
    monkeypatch.setattr(figure, "ranking", fail)
    with pytest.raises(StudyError, match="results.png: No space left on device"):
        run_select()
    assert [name for name in OUTPUTS if Path(name).exists()] == []


@pytest.mark.parametrize("runner_up, seeds, said", [
    (None, 3, "the only configuration"),
    ({"label": "b", "distinguishable": True, "p_vs_best": 0.01}, 1,
     "one seed: no test; rerun with more search.seeds"),
    ({"label": "b", "distinguishable": True, "p_vs_best": 0.01}, 2,
     "distinguishable from the runner-up (b): paired t-test over 2 seeds, p = 0.01, alpha 0.05"),
    ({"label": "b", "distinguishable": False, "p_vs_best": 0.2}, 3,
     "not distinguishable from the runner-up (b): paired t-test over 3 seeds, p = 0.2, "
     "alpha 0.05"),
])
def test_the_verdict_in_words(runner_up, seeds, said):
    from fmnist_mlp.selection.select import verdict

    assert verdict(runner_up, 0.05, seeds) == said


def test_configurations_at_chance_are_left_out_and_all_at_chance_is_an_error(capsys):
    from fmnist_mlp.selection.select import alive

    rows = [{"item": f"i{k}", "epochs": 5, "val_accuracy": acc, "val_examples": 1000}
            for k, acc in enumerate((0.85, 0.1, 0.5))]
    assert alive(rows) == [rows[0], rows[2]]
    assert "left out 1 configuration(s) no better than chance (1/10): i1 at 5 epochs" in \
        capsys.readouterr().err
    assert alive(rows[::2]) == rows[::2] and capsys.readouterr().err == ""
    with pytest.raises(DataError, match="every configuration is no better than chance"):
        alive([rows[1]])


def test_items_outside_the_grid_are_named(tmp_path, capsys):
    from fmnist_mlp.selection.select import warn_stale

    (tmp_path / "a").mkdir()
    (tmp_path / "old").mkdir()
    warn_stale(tmp_path, {"a"})
    assert f"{tmp_path} also holds 1 item(s) not in the grid (old)" in capsys.readouterr().err
    warn_stale(tmp_path, {"a", "old"})
    warn_stale(tmp_path / "missing", {"a"})
    assert capsys.readouterr().err == ""


def test_two_seeds_have_a_spread_and_a_test():
    """n = 2 is the smallest sample with a standard deviation and a paired t-test."""
    from scipy import stats

    from fmnist_mlp.evaluation.stats import paired_p, summary

    s = summary([0.8, 0.9])
    assert s == {"mean": pytest.approx(0.85), "std": pytest.approx(0.0707107, rel=1e-5),
                 "ci95": pytest.approx(12.706205 * 0.0707107 / math.sqrt(2), rel=1e-5), "n": 2}
    assert summary([0.8]) == {"mean": 0.8, "std": 0.0, "ci95": 0.0, "n": 1}
    a, b = [0.8, 0.9], [0.7, 0.85]
    assert paired_p(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_p([0.8], [0.7]) == 1.0
    assert paired_p([0.5, 0.75], [0.25, 0.5]) == 0.0 and paired_p(a, a) == 1.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # empty classes, a still trajectory
def test_the_test_loss_is_the_mean_negative_log_probability_of_the_label():
    log_probs = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))  # (2, 3)
    report = classification_report(log_probs, np.array([0, 2]))
    assert report["test_loss"] == pytest.approx((np.log(2) + np.log(10)) / 2)
    assert report["test_accuracy"] == 0.5


def test_an_accuracy_exactly_at_the_chance_threshold_is_chance():
    limit = 0.1 + 3.0 * np.sqrt(0.1 * 0.9 / 1000)
    assert no_better_than_chance(limit, 1000, 10)
    assert not no_better_than_chance(np.nextafter(limit, 1), 1000, 10)


def test_the_history_holds_each_epochs_figures_and_float32_stays_float32(rng):
    """Each history row is evaluate() at the trajectory's epoch snapshot; with float32 data the
    arithmetic is float32: the first step is theta - lr * grad in float32, bit for bit."""
    spec = net((5, 4, 3))
    X, Y = problem(rng, n=24)
    Xv, Yv = problem(rng, n=10)
    theta = init_params(spec, rng)
    res = sgd(theta, X, Y, spec, epochs=2, batch_size=8, learning_rate=0.1, l2=0.0,
              rng=np.random.default_rng(0), val=(Xv, Yv), progress=False)
    assert [r["epoch"] for r in res.history.rows()] == [1, 2]
    for row, snapshot in zip(res.history.rows(), res.trajectory[1:]):
        assert (row["train_loss"], row["train_accuracy"]) == evaluate(snapshot, X, Y, spec)
        assert (row["val_loss"], row["val_accuracy"]) == evaluate(snapshot, Xv, Yv, spec)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    one = sgd(theta, X32, Y, spec, epochs=1, batch_size=24, learning_rate=0.1, l2=0.0,
              rng=np.random.default_rng(0), progress=False)
    order = np.random.default_rng(0).permutation(24)
    _, grad = loss_and_grad(theta.astype(np.float32), X32[order], Y32[order], spec, 0.0)
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(one.theta, theta.astype(np.float32) - np.float32(0.1) * grad)


def test_divergence_names_the_epoch_the_step_and_the_learning_rate(rng):
    spec = net((5, 4, 3))
    X, Y = problem(rng, n=24)
    theta = init_params(spec, rng)
    with pytest.raises(DivergenceError, match=r"at epoch 1, step 2 \(learning_rate=1e\+300\)"):
        sgd(theta, X, Y, spec, epochs=1, batch_size=12, learning_rate=1e300, l2=0.0,
            rng=np.random.default_rng(0), progress=False)
    with pytest.raises(DivergenceError, match=r"at epoch 1, step 1 \(learning_rate=1e\+300\)"):
        sgd(theta, X, Y, spec, epochs=1, batch_size=24, learning_rate=1e300, l2=0.0,
            rng=np.random.default_rng(0), progress=False)  # the one step's update diverges


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # empty classes, a still trajectory
def test_the_plane_explains_the_variance_it_holds(rng):
    """A trajectory moving in the first three coordinates: the PCA plane's explained shares are
    its two principal axes' variances over the total, and the default centre is the mean."""
    spec = net((2, 2, 2))
    trajectory = np.zeros((5, spec.num_params))  # (5, 12)
    trajectory[:, 0] = [0, 4, 8, 12, 16]
    trajectory[:, 1] = [0, 1, -1, 1, -1]
    trajectory[:, 2] = [0, 0.1, 0, -0.1, 0]
    plane = landscape.fit_plane(trajectory, spec)
    dev = trajectory - trajectory.mean(axis=0)
    total = (dev ** 2).sum()
    s = np.linalg.svd(dev, compute_uv=False)  # the principal axes' spreads
    np.testing.assert_allclose(plane.explained_variance, s[:2] ** 2 / total, rtol=1e-10)
    np.testing.assert_array_equal(plane.center, trajectory.mean(axis=0))
    small = landscape.fit_plane(trajectory / 100, spec)  # a total squared deviation below 1
    np.testing.assert_allclose(small.explained_variance, plane.explained_variance, rtol=1e-10)
    still = landscape.fit_plane(np.zeros((3, spec.num_params)), spec)
    assert still.explained_variance.tolist() == [0.0, 0.0]


def test_filter_directions_come_from_the_last_point_and_a_fixed_seed(rng):
    spec = net((2, 3, 2))
    trajectory = rng.normal(size=(4, spec.num_params))  # (4, P)
    plane = landscape.fit_plane(trajectory, spec, center="last", directions="filter")
    expected = landscape.filter_normalised_directions(trajectory[-1], spec,
                                                      np.random.default_rng(0))
    np.testing.assert_array_equal(plane.directions, expected)
    np.testing.assert_array_equal(plane.center, trajectory[-1])


def test_off_plane_of_a_short_or_still_trajectory(rng):
    """A trajectory half a unit long, 0.1 off the plane at its end: 0.1 / 0.5; one that does
    not move: its distances as they are (0), not 0 / 0."""
    spec = net((2, 2, 2))
    X, Y = problem(rng, sizes=(2, 2, 2))
    plane = landscape.Plane(np.zeros(12), np.eye(12)[:2], np.ones(2))
    short = np.zeros((2, 12))
    short[1, 0], short[1, 2] = np.sqrt(0.24), 0.1  # length sqrt(0.24 + 0.01) = 0.5
    np.testing.assert_allclose(landscape.trajectory_fit(plane, short, spec, X, Y).off_plane,
                               [0, 0.2], atol=1e-12)
    still = landscape.trajectory_fit(plane, np.zeros((3, 12)), spec, X, Y).off_plane
    assert still.tolist() == [0.0, 0.0, 0.0]


def test_the_overlay_ranks_the_leaders_and_puts_the_rest_after(tmp_path):
    from fmnist_mlp.selection.ranking import overlay

    trials = [Trial(1, units, 0.05, 64, 0.001, "relu") for units in (8, 9, 10)]
    for trial in trials:
        (tmp_path / f"{trial.name}.csv").write_text(
            f"epoch,val_accuracy\n1,0.{trial.hidden_units}\n")
    assert [r["item"] for r in overlay(tmp_path, trials, (), [])] == [t.name for t in trials]
    rows = overlay(tmp_path, trials, ("hidden_units",), [trials[2].name])
    assert rows == [{"epoch": 1, "item": "units 10", "rank": 1, "val_accuracy": 0.1},
                    {"epoch": 1, "item": "units 8", "rank": 2, "val_accuracy": 0.8},
                    {"epoch": 1, "item": "units 9", "rank": 2, "val_accuracy": 0.9}]


def test_select_names_the_ties_and_the_diverged_items(three_items, capsys):
    """50 units within noise of 40 (not distinguishable), a fourth item whose seed 1 diverged:
    left out and named, counted in the report."""
    import yaml

    from fmnist_mlp.grid.search import write_item_metrics

    near = {0: [0.87, 0.86, 0.86], 1: [0.4] * 3}
    runs = {seed: {40: {"val_correct": round(near[0][seed] * 1000), "val_loss": 0.4}}
            for seed in (0, 1, 2)}
    write_item_metrics(Path(f"models/search/{Trial(3, 50, 0.05, 64, 0.001, 'relu').name}"
                            "/metrics.json"), Trial(3, 50, 0.05, 64, 0.001, "relu"), 1000, runs)
    sick = Trial(3, 35, 0.05, 64, 0.001, "relu")  # in the middle of the grid: 30, 35, 40, 50
    fake_item(Path("models/search"), sick, {40: [(0.5, 0.4)] * 3}, seeds=(0, 1, 2))
    write_item_metrics(Path(f"models/search/{sick.name}/metrics.json"), sick, 1000,
                       {0: runs[0], 1: {"diverged": {"epoch": 3, "loss": "nan"}}, 2: runs[2]})
    Path(f"plots/search/{sick.name}.csv").write_text("epoch,val_accuracy\n1,0.1\n")
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["search"]["hidden_units"] = [30, 35, 40, 50]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    run_select()
    report = json.loads(Path("report.json").read_text())
    assert report["not_distinguishable_from_best"] == ["units 50"]
    assert (report["items"], report["diverged_items"], report["configs"]) == (4, 1, 3)
    assert report["paired_runner_up"].startswith("not distinguishable from the runner-up "
                                                 "(units 50)")
    assert (f"left out 1 item(s) with a diverged seed: {sick.name} (seed 1: loss nan at epoch "
            f"3)") in capsys.readouterr().err


@pytest.mark.parametrize("correct, valid", [(0, True), (10, True), (11, False), (-1, False)])
def test_a_count_of_correct_predictions_runs_from_0_to_the_examples(correct, valid):
    from fmnist_mlp.selection.ranking import figures_at

    if valid:
        assert figures_at({"val_correct": correct, "val_loss": 1.5}, 10) == {
            "val_correct": correct, "val_accuracy": correct / 10, "val_loss": 1.5}
    else:
        with pytest.raises(ValueError, match=f"val_correct {correct} is not a count of 0..10"):
            figures_at({"val_correct": correct, "val_loss": 1.5}, 10)


def test_a_subset_is_a_seeded_stratified_sample(tmp_path):
    """prepare.subset 100 of 200 images (20 a class): 10 of each class, the same for the same
    seed and not for another; the split after it takes val_fraction of it (0.2 here, not
    scikit-learn's default 0.25); a subset of every image is no subset; one that leaves fewer
    than 10 out is refused in one line."""
    from fmnist_mlp.dataset.prepare import prepare

    labels = np.repeat(np.arange(10, dtype=np.uint8), 20)  # (200,)
    images = np.zeros((200, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(200)  # each image's index
    for prefix in ("train", "t10k"):
        write_raw(tmp_path, prefix, images, labels)

    def drawn(seed, subset):
        s = prepare(tmp_path, scale=1.0, offset=0.0, val_fraction=0.2, seed=seed, subset=subset)
        return s, np.sort(np.concatenate([s["train"].X[:, 0], s["val"].X[:, 0]]).astype(int))

    splits, kept = drawn(3, 100)
    assert len(kept) == 100 and len(splits["val"].labels) == 20
    assert np.bincount(labels[kept], minlength=10).tolist() == [10] * 10
    np.testing.assert_array_equal(drawn(3, 100)[1], kept)
    assert not np.array_equal(drawn(4, 100)[1], kept)
    whole, everything = drawn(3, 200)
    np.testing.assert_array_equal(everything, np.arange(200))
    assert len(whole["val"].labels) == 40
    with pytest.raises(ConfigError, match="prepare.subset: expected at most 190"):
        drawn(3, 195)


def test_float32_data_are_validated_in_float32(rng):
    """With float32 data and labels the history's figures are float32 arithmetic, as training."""
    spec = net((5, 4, 3))
    X, Y = (a.astype(np.float32) for a in problem(rng, n=24))
    Xv, Yv = (a.astype(np.float32) for a in problem(rng, n=40))
    res = sgd(init_params(spec, rng), X, Y, spec, epochs=1, batch_size=8, learning_rate=0.1,
              l2=0.0, rng=np.random.default_rng(0), val=(Xv, Yv), progress=False)
    theta = res.theta.astype(np.float32)  # float32 values, returned in float64
    assert (res.history.val_loss[0], res.history.val_accuracy[0]) == evaluate(theta, Xv, Yv, spec)
    assert (res.history.train_loss[0], res.history.train_accuracy[0]) == evaluate(theta, X, Y,
                                                                                  spec)


def test_a_grids_check_asks_the_disk_where_the_outputs_go(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from fmnist_mlp.grid.search import SearchConfig, check_disk, expand_grid

    usage, asked = namedtuple("usage", "total used free"), []

    def disk_usage(path):
        assert Path(path).is_dir(), path
        asked.append(Path(path))
        return usage(0, 0, 2**40)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    cfg = SearchConfig.from_dict({"hidden_layers": [1], "hidden_units": [8],
                                  "learning_rate": [0.1], "batch_size": [32], "l2": [0.0],
                                  "activation": ["relu"], "epochs": [1], "seeds": [0],
                                  "alpha": 0.05})
    check_disk(cfg, expand_grid(cfg), tmp_path / "models" / "search")
    assert asked == [tmp_path]


def test_an_items_metrics_keep_every_digit(tmp_path):
    from fmnist_mlp.grid.search import write_item_metrics

    trial = Trial(1, 8, 0.1, 32, 0.0, "relu")
    write_item_metrics(tmp_path / "m.json", trial, 7, {0: {1: {"val_correct": 3,
                                                               "val_loss": 0.123456789012}}})
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["seeds"]["0"]["epochs"]["1"] == {"val_correct": 3, "val_loss": 0.123456789012}


@pytest.mark.parametrize("examples, valid", [(1, True), (0, False)])
def test_an_item_with_one_validation_example_is_read(tmp_path, examples, valid):
    from fmnist_mlp.grid.search import write_item_metrics
    from fmnist_mlp.selection.ranking import read_item

    trial = Trial(1, 8, 0.1, 32, 0.0, "relu")
    (tmp_path / trial.name).mkdir()
    write_item_metrics(tmp_path / trial.name / "metrics.json", trial, examples,
                       {0: {1: {"val_correct": examples, "val_loss": 0.5}}})
    if valid:
        item = read_item(tmp_path / trial.name, trial, (1,), (0,))
        assert item["seeds"][0][1]["val_accuracy"] == 1.0
    else:
        with pytest.raises(DataError):
            read_item(tmp_path / trial.name, trial, (1,), (0,))


def test_the_gradient_check_counts_the_parameters(rng):
    spec = net((5, 4, 3))
    X, Y = problem(rng, n=6)
    result = gradcheck.check_gradient(init_params(spec, rng), X, Y, spec, l2=0.0)
    assert result.num_params == spec.num_params == 5 * 4 + 4 + 4 * 3 + 3


def test_relu_is_right_on_its_first_call_and_for_a_bigger_array():
    """A relu's zeros buffer is made on its first call and grown for a bigger array (a fresh
    process starts with none); the network's relu is one such."""
    from fmnist_mlp.network.spec import Relu

    assert isinstance(net((2, 2, 2)).act.apply, Relu)
    relu = Relu()
    for z in (np.array([-1.0, 2.0, -0.5]), np.array([[3.0, -4.0], [-0.0, 0.5]]),
              np.array([-2.0, 1.0, -3.0, 4.0, 5.0], np.float32)):
        expected = np.maximum(z, 0)
        out = relu(z.copy())
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == z.dtype


def test_a_spec_is_written_with_its_keys_sorted():
    """The model files hold the spec as JSON; sorted keys keep their bytes whatever the field
    order."""
    text = net((5, 4, 3)).to_json()
    assert list(json.loads(text)) == sorted(json.loads(text))


def test_a_grid_of_one_configuration_has_no_runner_up(three_items):
    import yaml

    params = yaml.safe_load(Path("params.yaml").read_text())
    params["search"]["hidden_units"] = [40]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    run_select()
    assert json.loads(Path("report.json").read_text())["p_runner_up"] == 1.0
    report = json.loads(Path("report.json").read_text())
    assert report["runner_up"] is None and report["paired_runner_up"] == "the only configuration"
    assert report["verdict"] == ("1 of 1 configuration(s) could be the best (Hsu's MCB, 95% "
                                 "simultaneous): the only configuration")
