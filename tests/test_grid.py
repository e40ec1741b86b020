"""The search grid (fmnist_mlp/grid/search.py), without training anything: SearchConfig's checks,
the grid's items and their names as DVC's matrix writes them, the flags of an item's command
line, the disk its checkpoints need, and an item's metrics file."""

import argparse
import json
from pathlib import Path

import pytest
import yaml
from conftest import section

from fmnist_mlp.core.errors import ConfigError
from fmnist_mlp.grid.search import (
    AXES,
    SearchConfig,
    Trial,
    check_disk,
    expand_grid,
    write_item_metrics,
)


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


def test_seeds_must_be_distinct():
    with pytest.raises(ConfigError, match="search.seeds: expected a non-empty list of distinct"):
        section(SearchConfig, seeds=[0, 0])


def test_a_grids_check_asks_the_disk_where_the_outputs_go(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage, asked = namedtuple("usage", "total used free"), []

    def disk_usage(path):
        assert Path(path).is_dir(), path
        asked.append(Path(path))
        return usage(0, 0, 2**40)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    cfg = SearchConfig.from_dict({"hidden_layers": [1], "hidden_units": [8],
                                  "learning_rate": [0.1], "batch_size": [32], "l2": [0.0],
                                  "activation": ["relu"], "epochs": [1], "seeds": [0]})
    check_disk(cfg, expand_grid(cfg), tmp_path / "models" / "search")
    assert asked == [tmp_path]


def test_an_items_metrics_keep_every_digit(tmp_path):
    trial = Trial(1, 8, 0.1, 32, 0.0, "relu")
    write_item_metrics(tmp_path / "m.json", trial, 7, {0: {1: {"val_correct": 3,
                                                               "val_loss": 0.123456789012}}})
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["seeds"]["0"]["epochs"]["1"] == {"val_correct": 3, "val_loss": 0.123456789012}
