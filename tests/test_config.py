import pytest
from conftest import section

from fmnist_mlp.core.errors import ConfigError
from fmnist_mlp.core.params import load_section, read_params
from fmnist_mlp.dataset.fetch import FetchConfig
from fmnist_mlp.dataset.prepare import PrepareConfig
from fmnist_mlp.keras_search.grid import SearchConfig
from fmnist_mlp.numpy_mlp.scratch import ScratchConfig


def test_committed_params_are_valid(root):
    for cls in (FetchConfig, PrepareConfig, ScratchConfig, SearchConfig):
        load_section(cls, root / "params.yaml")


def test_committed_params_are_the_seeds_problem_1():
    cfg = section(ScratchConfig)
    assert (cfg.hidden, cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.l2) == (
        (10, 10, 10), 20, 100, 0.01, 1e-4)


def test_values_are_converted_and_frozen():
    cfg = section(ScratchConfig, hidden=[3, 4], learning_rate=1)
    assert cfg.hidden == (3, 4) and cfg.learning_rate == 1.0
    with pytest.raises(AttributeError):
        cfg.epochs = 3


def test_a_missing_key_is_an_error_not_a_default(root):
    """params.yaml is the only home of the values."""
    raw = read_params(root / "params.yaml")["scratch"]
    del raw["epochs"]
    with pytest.raises(ConfigError, match="scratch.epochs: missing from params.yaml"):
        ScratchConfig.from_dict(raw)


def test_params_are_read_as_yaml_1_2_like_dvc(tmp_path, root):
    """`1e-3` is a number for DVC (YAML 1.2), so it is one here."""
    text = (root / "params.yaml").read_text()
    text = text.replace("learning_rate: 0.01", "learning_rate: 1e-3").replace(
        "l2: [0.001]", "l2: [1e-4]")
    (tmp_path / "params.yaml").write_text(text)
    assert load_section(ScratchConfig, tmp_path / "params.yaml").learning_rate == 1e-3
    assert load_section(SearchConfig, tmp_path / "params.yaml").l2 == (1e-4,)


def test_a_whole_float_is_an_integer_every_time():
    """DVC sees 3.0 == 3 (no change), so the stage must accept it too."""
    assert section(ScratchConfig, epochs=3.0).epochs == 3
    assert isinstance(section(ScratchConfig, epochs=3.0).epochs, int)


def test_matrix_axes_keep_numbers_as_written():
    """DVC names a matrix item after the value as written: l2 0 is `l2_0`, 0.0 `l2_0.0`."""
    cfg = section(SearchConfig, l2=[0, 0.001], learning_rate=[1])
    assert [type(v) for v in cfg.l2] == [int, float] and cfg.learning_rate == (1,)
    with pytest.raises(ConfigError, match=r"search.hidden_units\[0\]: expected an integer"):
        section(SearchConfig, hidden_units=[40.0])
    with pytest.raises(ConfigError, match="search.l2: expected distinct values"):
        section(SearchConfig, l2=[0, 0.0])


@pytest.mark.parametrize("raw, message", [
    ({"learning_rate": 0}, "scratch.learning_rate: expected a value > 0, got 0"),
    ({"batch_size": -5}, "scratch.batch_size: expected a value > 0"),
    ({"hidden": []}, "scratch.hidden: expected a non-empty list"),
    ({"hidden": [10, 0]}, "scratch.hidden: expected values > 0"),
    ({"hidden": 10}, "scratch.hidden: expected a list"),
    ({"epochs": 2.5}, "scratch.epochs: expected an integer"),
    ({"epochs": True}, "scratch.epochs: expected an integer"),
    ({"l2": "big"}, "scratch.l2: expected a number"),
    ({"learning_rate": float("inf")}, "scratch.learning_rate: expected a finite number"),
    ({"lr": 0.1}, "scratch.lr: unknown key"),
])
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        section(ScratchConfig, **raw)


def test_prepare_ranges():
    with pytest.raises(ConfigError, match="prepare.val_fraction"):
        section(PrepareConfig, val_fraction=1.0)
    with pytest.raises(ConfigError, match="prepare.subset"):
        section(PrepareConfig, subset=10)


def test_section_must_be_a_mapping(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("scratch: [1, 2]\n")
    with pytest.raises(ConfigError, match="scratch: expected a mapping"):
        load_section(ScratchConfig, path)


def test_broken_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("scratch: {epochs: [\n")
    with pytest.raises(ConfigError, match="params.yaml: not valid YAML") as info:
        load_section(ScratchConfig, path)
    assert "\n" not in str(info.value)
