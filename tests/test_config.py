import pytest
from conftest import section
from pydantic import ValidationError

from fmnist_mlp.core.errors import ConfigError
from fmnist_mlp.core.params import load_section, read_params
from fmnist_mlp.dataset.prepare import PrepareConfig
from fmnist_mlp.gradcheck.check import GradcheckConfig
from fmnist_mlp.grid.search import SearchConfig
from fmnist_mlp.landscape.plane import LandscapeConfig
from fmnist_mlp.numpy_mlp.scratch import ScratchConfig
from fmnist_mlp.raw.fetch import FetchConfig
from fmnist_mlp.selection.study import SelectConfig

# evaluate's section (stages/evaluate_keras.py) is a stage script's: importing it here would load
# the numeric profile after numpy; test_pipeline runs it.
SECTIONS = (FetchConfig, PrepareConfig, ScratchConfig, GradcheckConfig, LandscapeConfig,
            SearchConfig, SelectConfig)


def test_committed_params_load_every_key_unchanged(root):
    params = read_params(root / "params.yaml")
    for cls in SECTIONS:
        cfg = load_section(cls, root / "params.yaml")
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.model_dump().items()}
        assert isinstance(cfg, cls) and values == params[cls.SECTION], cls.SECTION


def test_committed_params_are_the_seeds_problem_1():
    cfg = section(ScratchConfig)
    assert (cfg.hidden, cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.l2) == (
        (10, 10, 10), 20, 100, 0.01, 1e-4)


def test_values_are_converted_and_frozen():
    cfg = section(ScratchConfig, hidden=[3, 4], learning_rate=1)
    assert cfg.hidden == (3, 4) and cfg.learning_rate == 1.0
    assert type(cfg.learning_rate) is float and type(section(LandscapeConfig).chunk_mb) is float
    assert hash(cfg) == hash(section(ScratchConfig, hidden=(3, 4), learning_rate=1.0))
    with pytest.raises(ValidationError, match="frozen"):
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
    """DVC sees 3.0 == 3 (no change), so the stage must accept it too; 3.5 and true are no
    integers."""
    assert type(section(ScratchConfig, epochs=3.0).epochs) is int
    assert section(ScratchConfig, epochs=3.0).epochs == 3
    assert section(SearchConfig, epochs=[20.0, 40]).epochs == (20, 40)
    assert section(PrepareConfig, subset=1000.0).subset == 1000
    for value in (3.5, True, "3"):
        with pytest.raises(ConfigError) as info:
            section(ScratchConfig, epochs=value)
        assert str(info.value) == f"scratch.epochs: expected an integer, got {value!r}"


def test_matrix_axes_keep_numbers_as_written():
    """DVC names a matrix item after the value as written: l2 0 is `l2_0`, 0.0 `l2_0.0`."""
    cfg = section(SearchConfig, l2=[0, 0.001], learning_rate=[1])
    assert [type(v) for v in cfg.l2] == [int, float] and cfg.learning_rate == (1,)
    assert type(cfg.learning_rate[0]) is int
    assert [type(v) for v in section(SearchConfig, l2=[0.0]).l2] == [float]
    with pytest.raises(ConfigError) as info:
        section(SearchConfig, hidden_units=[30, 40.0])
    assert str(info.value) == "search.hidden_units[1]: expected an integer, got 40.0"
    with pytest.raises(ConfigError, match="search.l2: expected distinct values"):
        section(SearchConfig, l2=[0, 0.0])
    with pytest.raises(ConfigError, match=r"search.l2\[0\]: expected a number, got True"):
        section(SearchConfig, l2=[True])


@pytest.mark.parametrize("raw, message", [
    ({"learning_rate": 0}, "scratch.learning_rate: expected a value > 0, got 0"),
    ({"batch_size": -5}, "scratch.batch_size: expected a value > 0"),
    ({"hidden": []}, "scratch.hidden: expected a non-empty list"),
    ({"hidden": [10, 0]}, "scratch.hidden[1]: expected a value > 0, got 0"),
    ({"hidden": 10}, "scratch.hidden: expected a list"),
    ({"epochs": 2.5}, "scratch.epochs: expected an integer"),
    ({"epochs": True}, "scratch.epochs: expected an integer"),
    ({"l2": "big"}, "scratch.l2: expected a number"),
    ({"learning_rate": float("inf")}, "scratch.learning_rate: expected a finite number"),
    ({"l2": float("nan")}, "scratch.l2: expected a finite number, got nan"),
    ({"l2": -1e-4}, "scratch.l2: expected a value >= 0, got -0.0001"),
    ({"activation": 3}, "scratch.activation: expected a string, got 3"),
    ({"dtype": "float16"}, "scratch.dtype: expected 'float32' or 'float64', got 'float16'"),
    ({"lr": 0.1}, "scratch.lr: unknown key"),
])
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError) as info:
        section(ScratchConfig, **raw)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("cls, raw, message", [
    (ScratchConfig, {"learning_rate": 0}, "scratch.learning_rate: expected a value > 0, got 0"),
    (ScratchConfig, {"activation": "gelu"},
     "scratch.activation: unknown activation 'gelu' (known: relu, sigmoid, tanh)"),
    (ScratchConfig, {"lr": 0.1, "epochs": None}, "scratch.lr: unknown key (known: activation, "
     "batch_size, dtype, epochs, hidden, init_seed, l2, learning_rate, shuffle_seed, "
     "snapshot_every)"),
    (SearchConfig, {"seeds": [0, 1.5]}, "search.seeds[1]: expected an integer, got 1.5"),
    (SearchConfig, {"seeds": [0, 0]},
     "search.seeds: expected a non-empty list of distinct seeds >= 0, got [0, 0]"),
    (SearchConfig, {"learning_rate": [float("inf")]},
     "search.learning_rate[0]: expected a finite number, got inf"),
    (SelectConfig, {"alpha": 1}, "select.alpha: expected a value between 0 and 1, got 1"),
    (SelectConfig, {"margin": 0.0}, "select.margin: expected a value between 0 and 1, got 0.0"),
    (SelectConfig, {"mcb_draws": 100}, "select.mcb_draws: expected a value >= 1000, got 100"),
    (SelectConfig, {"mcb_seed": -1}, "select.mcb_seed: expected a value >= 0, got -1"),
    (SearchConfig, {"alpha": 0.05}, "search.alpha: unknown key (known: activation, batch_size, "
     "epochs, hidden_layers, hidden_units, l2, learning_rate, seeds)"),
    (PrepareConfig, {"subset": 70_000}, "prepare.subset: expected a value <= 60000, got 70000"),
    (LandscapeConfig, {"grid": 1}, "landscape.grid: expected a value >= 2, got 1"),
    (FetchConfig, {"package_dir": None}, "fetch.package_dir: expected a string, got None"),
])
def test_errors_are_one_exact_line(cls, raw, message):
    with pytest.raises(ConfigError) as info:
        section(cls, **raw)
    assert str(info.value) == message


def test_prepare_ranges():
    with pytest.raises(ConfigError, match="prepare.val_fraction"):
        section(PrepareConfig, val_fraction=1.0)
    with pytest.raises(ConfigError, match="prepare.subset"):
        section(PrepareConfig, subset=10)


def test_section_must_be_a_mapping(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("scratch: [1, 2]\n")
    with pytest.raises(ConfigError) as info:
        load_section(ScratchConfig, path)
    assert str(info.value) == "scratch: expected a mapping, got [1, 2]"
    path.write_text("prepare: {}\n")  # no scratch section: its every key is missing
    with pytest.raises(ConfigError) as info:
        load_section(ScratchConfig, path)
    assert str(info.value) == "scratch.hidden: missing from params.yaml"


def test_broken_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("scratch: {epochs: [\n")
    with pytest.raises(ConfigError, match="params.yaml: not valid YAML") as info:
        load_section(ScratchConfig, path)
    assert "\n" not in str(info.value)
