"""Typed settings and registries: a plain mapping (from YAML) checked against a dataclass, and the
name -> class registries that case files select from by ``kind``.

Every configurable object declares its settings as a dataclass with type hints and defaults;
:func:`parse_settings` rejects unknown keys and values of the wrong type with a message that
names the key, so a case file error reads ``oracle.lr: expected a number, got 'abc'``.

Generic machinery, no physics and no imports from this project: it lives in the bottom package
so that every package can use it (``solvers.equations`` and ``solvers.initial`` build their
registries here without importing any score oracle; ``oracles.settings`` re-exports it).
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class SettingsError(ValueError):
    """An invalid setting; the message names the offending key."""


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            type(None): "null", list: "a list", dict: "a mapping"}.get(tp, str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` converted to the annotated type ``tp`` or raise :class:`SettingsError`."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg, key)
            except SettingsError:
                continue
        raise SettingsError(f"{key}: expected {_describe(tp)}, got {value!r}")
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise SettingsError(f"{key}: expected one of {_describe(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise SettingsError(f"{key}: expected a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp in (list, dict) or origin in (list, dict):
        if isinstance(value, origin or tp):
            return value
    else:  # pragma: no cover - a programming error in a settings class
        raise TypeError(f"unsupported settings type {tp!r}")
    raise SettingsError(f"{key}: expected {_describe(tp)}, got {value!r}")


def parse_settings(cls: type[T], mapping: Any, prefix: str) -> T:
    """Build the dataclass ``cls`` from ``mapping``; unknown keys and bad types are errors."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise SettingsError(f"{prefix}: expected a mapping, got {mapping!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(map(str, mapping)) - set(fields))
    if unknown:
        name = unknown[0] if unknown[0].isidentifier() else repr(unknown[0])
        raise SettingsError(f"{prefix}.{name}: unknown setting (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name in mapping:
            values[name] = coerce(mapping[name], hints[name], f"{prefix}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SettingsError(f"{prefix}.{name}: required setting is missing")
    return cls(**values)


class Registry:
    """Name -> class, for everything a case file selects by ``kind`` (oracles, equations,
    initial densities). Each registered class has a ``name`` and a ``Settings`` dataclass.

        EQUATIONS = Registry("equation")

        @EQUATIONS.register
        class Landau: name = "landau"; Settings = ...

    A name can be registered once: a second class under the same name is an error (re-executing
    the same class definition, as ``importlib.reload`` does, replaces it). ``builtin`` maps names to
    the modules that register them, imported on first lookup of that name (or on ``available()``),
    so that building a registry imports none of its entries.
    """

    def __init__(self, what: str, builtin: dict[str, str] | None = None) -> None:
        self.what = what
        self._classes: dict[str, type] = {}
        self._builtin = dict(builtin or {})

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make ``cls`` available under ``cls.name``; a name taken by another
        class raises ``ValueError``."""
        name = cls.name  # type: ignore[attr-defined]
        old = self._classes.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"{self.what} {name!r} is already registered (by {old.__module__}."
                             f"{old.__qualname__}); cannot register {cls.__module__}.{cls.__qualname__}")
        self._classes[name] = cls
        return cls

    def _load(self, name: str) -> None:
        module = self._builtin.get(name)
        if module is not None and name not in self._classes:
            importlib.import_module(module)

    def available(self) -> list[str]:
        for name in self._builtin:
            self._load(name)
        return sorted(self._classes)

    def __contains__(self, kind: Any) -> bool:
        return isinstance(kind, str) and (kind in self._classes or kind in self._builtin)

    def get(self, kind: Any, key: str) -> type:
        """The class registered as ``kind``; ``key`` names the case-file key in errors."""
        if isinstance(kind, str):
            self._load(kind)
        if not isinstance(kind, str) or kind not in self._classes:
            raise SettingsError(f"{key}: unknown {self.what} {kind!r} (available: {', '.join(self.available())})")
        return self._classes[kind]

    def parse(self, spec: Any, key: str) -> tuple[type, Any]:
        """Validate ``{kind: NAME, **settings}`` (or a bare ``NAME``); return the class and its typed settings."""
        if isinstance(spec, str):
            spec = {"kind": spec}
        if not isinstance(spec, dict) or "kind" not in spec:
            raise SettingsError(f"{key}: expected a mapping with a 'kind' (available: {', '.join(self.available())})")
        cls = self.get(spec["kind"], f"{key}.kind")
        rest = {k: v for k, v in spec.items() if k != "kind"}
        return cls, parse_settings(cls.Settings, rest, key)  # type: ignore[attr-defined]
