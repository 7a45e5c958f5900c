"""Typed configs: frozen dataclasses built from dicts / YAML with unknown keys rejected, and named registries."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Generic, Mapping, TypeVar

import yaml

from worldvla_dist.errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], values: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from `values`; unknown keys are an error, nested dataclasses recurse."""
    where = where or cls.__name__
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; valid keys are {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg) and isinstance(value, Mapping):
                return from_dict(arg, value, where)
        return value
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (tuples become lists), for YAML / JSON."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load a YAML file into dataclass `cls`, naming the file in every error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    with path.open() as f:
        values = yaml.safe_load(f) or {}
    return from_dict(cls, values, where=str(path))


class Registry(Generic[T]):
    """Named presets of one config type; an unknown name fails and lists the registered ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ConfigError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid names are {sorted(self._items)}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)
