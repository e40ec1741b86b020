"""Search logic without training anything (grid, names, selection, stale and malformed items)."""

import argparse
import json

import pytest
import yaml
from conftest import section

from fmnist_mlp.core.errors import ConfigError, DataError
from fmnist_mlp.grid.search import (
    AXES,
    SearchConfig,
    Trial,
    check_disk,
    divergence,
    expand_grid,
    write_item_metrics,
)
from fmnist_mlp.selection.ranking import configurations, label, read_item, select_best, varying

EXAMPLES = 10_000  # validation examples of a fake item: accuracies with 4 decimals are counts


def fake_item(root, trial, scores, seeds=(0,)):
    """An item directory as the search stage leaves it; scores: {epoch: (val_acc, val_loss)}
    of every seed, or {epoch: [(val_acc, val_loss) per seed]}."""
    item_dir = root / trial.name
    item_dir.mkdir(parents=True)
    runs = {seed: {e: {"val_correct": round((v[i][0] if isinstance(v, list) else v[0]) * EXAMPLES),
                       "val_loss": v[i][1] if isinstance(v, list) else v[1]}
                   for e, v in scores.items()} for i, seed in enumerate(seeds)}
    write_item_metrics(item_dir / "metrics.json", trial, EXAMPLES, runs)
    return item_dir


def test_a_grid_too_large_for_the_disk_is_refused_in_one_line(tmp_path, monkeypatch):
    """The committed grid (12 items x 3 seeds x 2 checkpoints, 380 280 weights in all) needs
    2 x 6 x (4 x 380 280 + 12 x 32 KiB) = 22 972 032 bytes (0.0214 GiB) of disk, the outputs and
    DVC's cache on one disk."""
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    cfg = section(SearchConfig)
    need = 22_972_032
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, need))
    grid = expand_grid(cfg)
    check_disk(cfg, grid, tmp_path / "models" / "search")  # just fits, the directory not made
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, need - 1))
    with pytest.raises(ConfigError) as e:
        check_disk(cfg, grid, tmp_path / "models" / "search")
    assert str(e.value) == (f"search: 12 item(s) to train x 3 seed(s) x 2 epoch(s) of checkpoints "
                            f"need about 0.0214 GiB of disk, 0.0214 GiB free at {tmp_path}; "
                            f"fewer items, search.seeds or search.epochs")
    check_disk(cfg, grid[1:], tmp_path / "models" / "search")  # 11 items fit


def test_seed_grid_has_12_items_and_24_configurations():
    cfg = section(SearchConfig)
    grid = expand_grid(cfg)
    assert len(grid) == 12 and len(set(grid)) == 12
    assert grid[0] == Trial(3, 30, 0.05, 64, 0.001, "relu")
    assert grid[-1] == Trial(5, 40, 0.05, 128, 0.001, "relu")
    assert len(grid) * len(cfg.epochs) == 24


def test_item_name_matches_the_dvc_yaml_template(root):
    """select finds each item where the matrix stage wrote it."""
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["search"]
    trial = Trial(4, 40, 0.05, 128, 0.001, "relu")
    paths = []
    for path in stage["outs"]:
        for axis in stage["matrix"]:
            path = path.replace(f"${{item.{axis}}}", str(getattr(trial, axis)))
        paths.append(path)
    assert paths == [f"models/search/{trial.name}", f"plots/search/{trial.name}.csv"]
    assert set(stage["matrix"]) == set(Trial.__dataclass_fields__)


def test_duplicate_or_empty_axis_is_rejected():
    with pytest.raises(ConfigError, match="search.batch_size: expected distinct values"):
        section(SearchConfig, batch_size=[64, 64])
    with pytest.raises(ConfigError, match="search.hidden_units: expected a non-empty list"):
        section(SearchConfig, hidden_units=[])


def test_selection_prefers_accuracy_then_loss_then_grid_order(tmp_path):
    # Given two items whose best checkpoints tie on accuracy
    a, b = Trial(3, 30, 0.05, 64, 0.001, "relu"), Trial(3, 40, 0.05, 64, 0.001, "relu")
    fake_item(tmp_path, a, {20: (0.88, 0.40), 40: (0.87, 0.38)})
    fake_item(tmp_path, b, {20: (0.86, 0.41), 40: (0.88, 0.35)})
    # When the current grid is read and the best configuration selected
    items = [read_item(tmp_path / t.name, t, (20, 40), (0,)) for t in (a, b)]
    rows = configurations(items)
    best = select_best(rows)
    # Then the lower validation loss breaks the tie
    assert len(rows) == 4
    assert (best["item"], best["epochs"], best["val_loss"]) == (b.name, 40, 0.35)
    # And an exact tie goes to the earlier configuration in grid order
    exact = [dict(rows[0]), dict(rows[0], label="later")]
    assert select_best(exact) is exact[0]


def test_stale_directories_are_ignored(tmp_path):
    # Given the directory of a removed grid value holding a better score
    cfg = section(SearchConfig, hidden_layers=[3], hidden_units=[30], batch_size=[64],
                  epochs=[2])
    (current,) = expand_grid(cfg)
    fake_item(tmp_path, current, {2: (0.80, 0.5)})
    fake_item(tmp_path, Trial(9, 99, 0.05, 64, 0.001, "relu"), {2: (0.99, 0.1)})
    # When only the current grid is read
    items = [read_item(tmp_path / t.name, t, cfg.epochs, (0,)) for t in expand_grid(cfg)]
    # Then the stale item plays no part
    assert select_best(configurations(items))["item"] == current.name


def test_missing_item_is_a_clear_error(tmp_path):
    trial = Trial(3, 30, 0.05, 64, 0.001, "relu")
    with pytest.raises(DataError, match=f"{trial.name}/metrics.json: missing"):
        read_item(tmp_path / trial.name, trial, (20,), (0,))


TRIAL_FIELDS = {"hidden_layers": 3, "hidden_units": 30, "learning_rate": 0.05, "batch_size": 64,
                "l2": 0.001, "activation": "relu"}


@pytest.mark.parametrize("content", [
    "not json",
    json.dumps({"trial": {}, "epochs": {}}),
    json.dumps({"trial": TRIAL_FIELDS, "val_examples": 10,
                "seeds": {"0": {"epochs": {"40": {"val_correct": 9, "val_loss": 0.3}}}}}),
    json.dumps({"trial": TRIAL_FIELDS, "val_examples": 10,
                "seeds": {"1": {"epochs": {"20": {"val_correct": 9, "val_loss": 0.3}}}}}),
    json.dumps({"trial": TRIAL_FIELDS,  # rounded accuracies, not exact counts
                "seeds": {"0": {"epochs": {"20": {"val_accuracy": 0.9, "val_loss": 0.3}}}}}),
    json.dumps({"trial": TRIAL_FIELDS, "val_examples": 10,
                "seeds": {"0": {"epochs": {"20": {"val_correct": 11, "val_loss": 0.3}}}}}),
    json.dumps({"trial": TRIAL_FIELDS, "val_examples": 10,
                "seeds": {"0": {"epochs": {"20": {"val_correct": 8.5, "val_loss": 0.3}}}}}),
])
def test_malformed_item_names_the_file(tmp_path, content):
    trial = Trial(3, 30, 0.05, 64, 0.001, "relu")
    (tmp_path / trial.name).mkdir()
    (tmp_path / trial.name / "metrics.json").write_text(content)
    with pytest.raises(DataError, match="metrics.json: malformed item metrics"):
        read_item(tmp_path / trial.name, trial, (20,), (0,))


def test_item_recording_another_trial_is_rejected(tmp_path):
    trial, other = (Trial(3, 30, 0.05, batch, 0.001, "relu") for batch in (64, 128))
    fake_item(tmp_path, other, {20: (0.8, 0.5)})
    (tmp_path / other.name).rename(tmp_path / trial.name)
    with pytest.raises(DataError, match="records"):
        read_item(tmp_path / trial.name, trial, (20,), (0,))


def test_empty_grid_cannot_be_selected():
    with pytest.raises(DataError, match="empty"):
        select_best([])


def test_search_command_passes_every_axis_as_its_flag(root):
    """DVC expands ``${item}`` to one ``--axis value`` flag per matrix axis: the axes are the
    Trial's fields, so the stage's parser gets every field."""
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["search"]
    assert "${item}" in stage["cmd"].split()
    assert tuple(stage["matrix"]) == AXES


@pytest.mark.parametrize("l2", [0, 0.0, 1, 1e-05, 0.001, 2.5e-3])
def test_name_from_the_command_line_is_dvcs_name(l2):
    """DVC writes str(value) into both the flag and the output path; the stage parses the flag
    and must arrive at the same directory name, whole numbers included."""
    parser = argparse.ArgumentParser()
    Trial.add_arguments(parser)
    trial = Trial(3, 30, 0.05, 64, l2, "tanh")
    argv = [part for axis in AXES for part in (f"--{axis}", str(getattr(trial, axis)))]
    parsed = Trial(**vars(parser.parse_args(argv)))
    assert parsed == trial and parsed.name == trial.name
    assert parsed.name.endswith(f"l2_{l2}-tanh")


def test_diverged_items_have_no_configuration_and_are_named(tmp_path):
    good, wild = Trial(3, 30, 0.05, 64, 0.001, "relu"), Trial(3, 30, 100.0, 64, 0.001, "relu")
    fake_item(tmp_path, good, {2: (0.8, 0.5)})
    (tmp_path / wild.name).mkdir()
    write_item_metrics(tmp_path / wild.name / "metrics.json", wild, EXAMPLES,
                       {0: {"diverged": {"epoch": 1, "loss": "nan", "val_loss": "nan"}}})
    items = [read_item(tmp_path / t.name, t, (2,), (0,)) for t in (good, wild)]
    assert [r["item"] for r in configurations(items)] == [good.name]
    assert divergence(wild, items[1]["diverged"]) == \
        f"{wild.name} (seed 0: loss nan, val_loss nan at epoch 1)"


def test_labels_show_only_the_axes_that_vary():
    cfg = section(SearchConfig)  # the seed's grid: lr and l2 are the same for every item
    assert varying(cfg) == ("hidden_layers", "hidden_units", "batch_size", "epochs")
    items = [{"trial": Trial(3, 40, 0.05, 128, 0.001, "relu"), "diverged": {}, "val_examples": 10,
              "seeds": {0: {40: {"val_correct": 9, "val_accuracy": 0.9, "val_loss": 0.3}}}}]
    (row,) = configurations(items, varying(cfg))
    assert row["label"] == "layers 3, units 40, batch 128, epochs 40"
    assert configurations(items)[0]["label"] == \
        "layers 3, units 40, lr 0.05, batch 128, l2 0.001, relu, epochs 40"
    one = section(SearchConfig, hidden_layers=[3], hidden_units=[40], batch_size=[64],
                  epochs=[20])
    assert varying(one) == () and label(row, varying(one)) == "the only configuration"
