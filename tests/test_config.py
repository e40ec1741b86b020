import pytest

from fmnist_mlp.config import FetchConfig, PrepareConfig, ScratchConfig, load_section
from fmnist_mlp.errors import ConfigError


def test_committed_params_are_valid(root):
    for cls in (FetchConfig, PrepareConfig, ScratchConfig):
        load_section(cls, root / "params.yaml")


def test_defaults_are_the_seeds_problem_1():
    cfg = ScratchConfig.from_dict({})
    assert (cfg.hidden, cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.l2) == (
        (10, 10, 10), 20, 100, 0.01, 1e-4)


def test_values_are_converted_and_frozen():
    cfg = ScratchConfig.from_dict({"hidden": [3, 4], "learning_rate": 1})
    assert cfg.hidden == (3, 4) and cfg.learning_rate == 1.0
    with pytest.raises(AttributeError):
        cfg.epochs = 3


@pytest.mark.parametrize("raw, message", [
    ({"learning_rate": 0}, "scratch.learning_rate: expected a value > 0, got 0"),
    ({"batch_size": -5}, "scratch.batch_size: expected a value > 0"),
    ({"hidden": []}, "scratch.hidden: expected a non-empty list"),
    ({"hidden": [10, 0]}, "scratch.hidden: expected values > 0"),
    ({"hidden": 10}, "scratch.hidden: expected a list"),
    ({"epochs": 2.5}, "scratch.epochs: expected an integer"),
    ({"epochs": True}, "scratch.epochs: expected an integer"),
    ({"l2": "big"}, "scratch.l2: expected a number"),
    ({"lr": 0.1}, "scratch.lr: unknown key"),
])
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ScratchConfig.from_dict(raw)


def test_prepare_ranges():
    with pytest.raises(ConfigError, match="prepare.val_fraction"):
        PrepareConfig.from_dict({"val_fraction": 1.0})
    with pytest.raises(ConfigError, match="prepare.subset"):
        PrepareConfig.from_dict({"subset": 10})


def test_section_must_be_a_mapping(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("scratch: [1, 2]\n")
    with pytest.raises(ConfigError, match="scratch: expected a mapping"):
        load_section(ScratchConfig, path)
