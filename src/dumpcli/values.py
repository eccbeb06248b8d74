"""Typed values from YAML and the command line: one conversion for config keys and scheduler options."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from dumpcli.errors import DumpError


def coerce(value: Any, target: Any) -> Any:
    """Convert a YAML or command-line value to a field's type; TypeError/ValueError when it cannot be."""
    origin = typing.get_origin(target)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(target) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~", "")):
            return None
        return coerce(value, args[0])
    if origin is list:
        (inner,) = typing.get_args(target) or (str,)
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise TypeError(value)
        return [coerce(v, inner) for v in items]
    if origin is dict or target is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value) or {}
        if not isinstance(value, Mapping):
            raise TypeError(value)
        return dict(value)
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ValueError(value)
    if target is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if target is float:
        if isinstance(value, bool):
            raise ValueError(value)
        out = float(value)
        if math.isnan(out):
            raise ValueError(value)
        return out
    if target is str:
        if isinstance(value, (dict, list)) or value is None:
            raise TypeError(value)
        return str(value)
    return value


def coerce_fields(cls: type, raw: Mapping[str, Any], *, unknown: Callable[[str, list[str]], str],
                  invalid: Callable[[str, Any, str], str]) -> dict[str, Any]:
    """`raw` converted to the types of dataclass `cls`'s fields (scheduler options, TRL's GRPOConfig).

    DumpError with `unknown(key, field names)` for a key that is no field, `invalid(key, value,
    type in prose)` for a value that does not convert.
    """
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise DumpError(unknown(key, fields))
        try:
            out[key] = coerce(value, hints[key])
        except (TypeError, ValueError) as e:
            raise DumpError(invalid(key, value, type_name(hints[key]))) from e
    return out


def type_name(t: Any, *, prose: bool = True) -> str:
    """A field type for people: "an integer" in error messages, "int" (prose=False) in listings."""
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return f"{type_name(args[0], prose=prose)} or none"
    if origin is list:
        (inner,) = typing.get_args(t) or (str,)
        return f"a comma-separated list of {type_name(inner, prose=prose)}" if prose else f"list of {type_name(inner, prose=False)}"
    if origin is dict:
        return "a mapping" if prose else "mapping"
    if not prose:
        return getattr(t, "__name__", str(t))
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(
        getattr(t, "__name__", ""), str(t)
    )
