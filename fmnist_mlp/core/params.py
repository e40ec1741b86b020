"""Typed, frozen views of the sections of params.yaml: the common machinery.

Each section's class lives beside the code of the stages that read it (``FetchConfig`` in
fetch.py, ``SearchConfig`` in grid.py, ...), so editing one section's checks reruns only its
stages. Each stage reads its own section with ``load_section(Name, path)``: an unknown key, a
missing key, a wrong type or an out-of-range value raises :class:`ConfigError` naming
``section.key``, before any work is done. params.yaml is the only home of the values: the
classes carry no defaults. It is read as YAML 1.2, as DVC reads it (``1e-3`` is a number).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from fmnist_mlp.core.errors import ConfigError

# A value of a DVC matrix axis: DVC names the item after the value as written (``l2_0`` for 0,
# ``l2_0.0`` for 0.0), so it is kept as written. StrictInt refuses 40.0, Number keeps 0 an int.
StrictInt = typing.NewType("StrictInt", int)
Number = typing.NewType("Number", float)


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
    if annotation in (float, Number):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return value if annotation is Number else float(value)
    if annotation in (int, StrictInt):
        if isinstance(value, float) and value.is_integer() and annotation is int:
            return int(value)  # 3.0 is 3, as DVC compares params: one answer every time
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


def require(ok: bool, key: str, expected: str, value) -> None:
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
        for name in fields:
            key = f"{cls.SECTION}.{name}"
            if name not in raw:
                raise ConfigError(f"{key}: missing from params.yaml")
            values[name] = _check_type(key, raw[name], hints[name])
        obj = cls(**values)
        obj.validate()
        return obj

    def key(self, name: str) -> str:
        return f"{self.SECTION}.{name}"

    def validate(self) -> None:
        """Range checks; overridden per section."""


def positive(section: Section, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        require(value > 0, section.key(name), "a value > 0", value)


def non_negative(section: Section, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        require(value >= 0, section.key(name), "a value >= 0", value)


def positive_list(section: Section, name: str) -> None:
    value = getattr(section, name)
    require(len(value) > 0, section.key(name), "a non-empty list", list(value))
    for v in value:
        require(v > 0, section.key(name), "values > 0", list(value))


def read_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    try:
        raw = YAML(typ="safe", pure=True).load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except YAMLError as e:
        problem = " ".join(str(e).split())
        raise ConfigError(f"{path}: not valid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections")
    return raw


S = typing.TypeVar("S", bound=Section)


def load_section(cls: type[S], path: str | Path = "params.yaml") -> S:
    """Read ``cls.SECTION`` of ``path`` as a validated frozen config."""
    return cls.from_dict(read_params(path).get(cls.SECTION))


__all__ = ["Section", "StrictInt", "Number", "require", "positive", "non_negative",
           "positive_list", "read_params", "load_section"]
