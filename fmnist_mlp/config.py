"""Typed, frozen views of the sections of params.yaml.

Each stage reads its own section with ``load_section(path, Name)``: an unknown key, a missing key,
a wrong type or an out-of-range value raises :class:`ConfigError` naming ``section.key``, before
any work is done.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from fmnist_mlp.errors import ConfigError


def _check_type(key: str, value, annotation) -> object:
    """``value`` converted to ``annotation`` (int->float, list->tuple), or ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_type(key, value, inner)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_check_type(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")


def _require(ok: bool, key: str, expected: str, value) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")


class Section:
    """Mixin: build a frozen dataclass from a params.yaml mapping, strictly."""

    SECTION: typing.ClassVar[str]

    @classmethod
    def from_dict(cls, raw: dict | None):
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise ConfigError(f"{cls.SECTION}: expected a mapping, got {raw!r}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise ConfigError(
                f"{cls.SECTION}.{unknown[0]}: unknown key (known: {', '.join(sorted(fields))})"
            )
        values = {}
        for name, f in fields.items():
            key = f"{cls.SECTION}.{name}"
            if name not in raw:
                no_default = f.default is dataclasses.MISSING
                if no_default and f.default_factory is dataclasses.MISSING:
                    raise ConfigError(f"{key}: missing")
                continue
            values[name] = _check_type(key, raw[name], hints[name])
        obj = cls(**values)
        obj.validate()
        return obj

    def key(self, name: str) -> str:
        return f"{self.SECTION}.{name}"

    def validate(self) -> None:
        """Range checks; overridden per section."""


def _positive(section: Section, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        _require(value > 0, section.key(name), "a value > 0", value)


def _non_negative(section: Section, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        _require(value >= 0, section.key(name), "a value >= 0", value)


def _positive_list(section: Section, name: str) -> None:
    value = getattr(section, name)
    _require(len(value) > 0, section.key(name), "a non-empty list", list(value))
    for v in value:
        _require(v > 0, section.key(name), "values > 0", list(value))


SEARCH_AXES = ("hidden_layers", "hidden_units", "learning_rate", "batch_size", "l2")


@dataclass(frozen=True)
class FetchConfig(Section):
    SECTION = "fetch"
    source_dir: str | None = None
    package_dir: str = "/usr/share/datasets/fashion-mnist"
    mirror_url: str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
    timeout: float = 30.0

    def validate(self) -> None:
        _positive(self, "timeout")


@dataclass(frozen=True)
class PrepareConfig(Section):
    SECTION = "prepare"
    scale: float = 255.0
    offset: float = -0.5
    val_fraction: float = 0.2
    seed: int = 42
    subset: int | None = None

    def validate(self) -> None:
        _positive(self, "scale")
        _require(0 < self.val_fraction < 1, self.key("val_fraction"), "0 < value < 1",
                 self.val_fraction)
        _non_negative(self, "seed")
        if self.subset is not None:
            _require(100 <= self.subset <= 60_000, self.key("subset"),
                     "null or 100..60000 examples", self.subset)


@dataclass(frozen=True)
class ScratchConfig(Section):
    """The from-scratch MLP and its SGD run (params section ``scratch``)."""

    SECTION = "scratch"
    hidden: tuple[int, ...] = (10, 10, 10)
    epochs: int = 20
    batch_size: int = 100
    learning_rate: float = 0.01
    l2: float = 1e-4
    init_seed: int = 0
    shuffle_seed: int = 0
    snapshot_every: int = 0
    dtype: typing.Literal["float32", "float64"] = "float32"

    def validate(self) -> None:
        _positive_list(self, "hidden")
        _positive(self, "epochs", "batch_size", "learning_rate")
        _non_negative(self, "l2", "init_seed", "shuffle_seed", "snapshot_every")


@dataclass(frozen=True)
class GradcheckConfig(Section):
    SECTION = "gradcheck"
    samples: int = 5
    epsilon: float = 1e-6
    tolerance: float = 1e-7

    def validate(self) -> None:
        _positive(self, "samples", "epsilon", "tolerance")


@dataclass(frozen=True)
class SearchConfig(Section):
    """The Keras grid (params section ``search``): five axes, and epochs as checkpoints."""

    SECTION = "search"
    hidden_layers: tuple[int, ...] = (3, 4, 5)
    hidden_units: tuple[int, ...] = (30, 40)
    learning_rate: tuple[float, ...] = (0.05,)
    batch_size: tuple[int, ...] = (64, 128)
    l2: tuple[float, ...] = (0.001,)
    epochs: tuple[int, ...] = (20, 40)
    seed: int = 0
    steps_per_execution: int = 50

    def validate(self) -> None:
        for name in ("hidden_layers", "hidden_units", "learning_rate", "batch_size", "epochs"):
            _positive_list(self, name)
        _require(len(self.l2) > 0 and min(self.l2) >= 0, self.key("l2"),
                 "a non-empty list of values >= 0", list(self.l2))
        for name in (*SEARCH_AXES, "epochs"):
            values = getattr(self, name)
            _require(len(set(values)) == len(values), self.key(name), "distinct values",
                     list(values))
        _positive(self, "steps_per_execution")
        _require(self.seed >= 0, self.key("seed"), "a value >= 0", self.seed)


@dataclass(frozen=True)
class EvaluateConfig(Section):
    SECTION = "evaluate"
    retrain: bool = False
    seeds: tuple[int, ...] = (1, 2, 3)

    def validate(self) -> None:
        _require(all(s >= 0 for s in self.seeds), self.key("seeds"), "seeds >= 0",
                 list(self.seeds))


@dataclass(frozen=True)
class LandscapeConfig(Section):
    """The loss landscape on a plane through the SGD trajectory (params section ``landscape``)."""

    SECTION = "landscape"
    center: typing.Literal["mean", "final"] = "mean"
    directions: typing.Literal["pca", "random"] = "pca"
    grid: int = 100
    margin: float = 0.1
    samples: int = 2500
    seed: int = 0
    chunk_mb: float = 2.0

    def validate(self) -> None:
        _require(self.grid >= 2, self.key("grid"), "an integer >= 2", self.grid)
        _non_negative(self, "margin", "seed")
        _positive(self, "samples", "chunk_mb")


def read_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections")
    return raw


S = typing.TypeVar("S", bound=Section)


def load_section(cls: type[S], path: str | Path = "params.yaml") -> S:
    """Read ``cls.SECTION`` of ``path`` as a validated frozen config."""
    return cls.from_dict(read_params(path).get(cls.SECTION))


__all__ = [
    "FetchConfig", "PrepareConfig", "ScratchConfig", "GradcheckConfig", "SearchConfig",
    "EvaluateConfig", "LandscapeConfig", "load_section",
    "read_params",
]
