"""Typed, frozen views of the sections of params.yaml (pydantic), one class per section beside
its stages' code (``FetchConfig`` in fetch.py, ...): ``load_section(Name, path)`` raises one line
of :class:`ConfigError` naming ``section.key`` for an unknown or missing key, a wrong type or an
out-of-range value. params.yaml is the only home of the values: no defaults. It is read as YAML
1.2, as DVC reads it (``1e-3`` is a number); types are strict, lists become tuples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator, WrapValidator
from pydantic_core import PydanticCustomError
from ruamel.yaml import YAML, YAMLError

from fmnist_mlp.core.errors import ConfigError

# DVC compares params as numbers (3.0 epochs is 3: no change), so a whole float is that int.
Int = Annotated[int, BeforeValidator(lambda v: int(v) if type(v) is float and v.is_integer()
                                     else v)]
# A matrix axis's value as written: DVC names the item after it (l2_0 for 0, l2_0.0 for 0.0), so
# an int stays an int (and a plain ``int`` axis refuses 40.0).
Number = Annotated[float, WrapValidator(lambda v, handler: v if type(v) is int else handler(v))]


def _fraction(value: float) -> float:
    if not 0 < value < 1:
        raise PydanticCustomError("range", "expected a value between 0 and 1")
    return value


Fraction = Annotated[float, AfterValidator(_fraction)]
EXPECTED = {  # what pydantic's error types expect, in params.yaml's words
    "int_type": "an integer", "float_type": "a number", "finite_number": "a finite number",
    "bool_type": "true or false", "string_type": "a string", "tuple_type": "a list",
    "too_short": "a non-empty list", "literal_error": "{expected}", "model_type": "a mapping",
    "greater_than": "a value > {gt:g}", "greater_than_equal": "a value >= {ge:g}",
    "less_than_equal": "a value <= {le:g}"}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)
    SECTION: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _lists_as_tuples(cls, raw):
        if not isinstance(raw, dict):
            return raw
        return {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}

    @classmethod
    def from_dict(cls, raw: dict | None):
        try:
            return cls.model_validate({} if raw is None else raw)
        except ValidationError as e:  # the first error, an unknown key (a typo?) before all
            err = min(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
        key = cls.SECTION + "".join(f"[{p}]" if type(p) is int else f".{p}" for p in err["loc"])
        kind, value = err["type"], err["input"]
        if kind == "missing":
            raise ConfigError(f"{key}: missing from params.yaml")
        if kind == "extra_forbidden":
            raise ConfigError(f"{key}: unknown key (known: {', '.join(sorted(cls.model_fields))})")
        if kind in EXPECTED:
            problem = "expected " + EXPECTED[kind].format(**err.get("ctx", {}))
        else:  # a custom error's own message (or pydantic's, for an unforeseen type)
            problem = err["msg"]
        value = list(value) if isinstance(value, tuple) else value  # as params.yaml writes it
        raise ConfigError(f"{key}: {problem}, got {value!r}")

    @classmethod
    def key(cls, name: str) -> str:
        return f"{cls.SECTION}.{name}"


def read_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    try:
        raw = YAML(typ="safe", pure=True).load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections")
    return raw


S = TypeVar("S", bound=Section)


def load_section(cls: type[S], path: str | Path = "params.yaml") -> S:
    """Read ``cls.SECTION`` of ``path`` as a validated frozen config."""
    return cls.from_dict(read_params(path).get(cls.SECTION))
