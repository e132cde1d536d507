"""The strict YAML loader under every typed config: unknown keys, wrong types and bad files fail.

Each package owns its config dataclasses (``ganpso.data.config``, ``ganpso.classifier.config``,
``ganpso.gan.config``, ``ganpso.pipeline.config``); this module only turns mappings into them.
Keys equal constructor argument names, so a config section flows straight into the code that
uses it. Unknown keys are refused with the list of valid ones, never silently ignored.

Each field may declare its allowed range beside its default (``bounded``); ``validate`` checks
every range and each config's ``check`` (consistency between fields), for YAML, ``--set``,
profiles and configs built in Python alike, with one line naming the key, the value and the range.

A YAML file may start from another one: ``base: other.yaml`` (relative to the file) loads that
first, and the file's own keys override it, section by section, so a preset is a diff.
``base: other.yaml#classifier`` starts from one section of the other file.

Example:
    >>> from ganpso.classifier.config import TrainConfig
    >>> TrainConfig.from_dict({"epochs": 2}).epochs
    2
"""

from __future__ import annotations

import copy
import dataclasses
import math
import operator
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import yaml

from ganpso.errors import ConfigError

BASE_KEY = "base"  # a YAML file's parent: its keys are loaded first, then overridden
BOUNDS = "bounds"  # the field metadata key that holds a ``Bounds``
T = TypeVar("T")


@dataclass(frozen=True)
class Bounds:
    """An allowed numeric range; ``None`` values pass (an optional field left unset)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def violation(self, value: Any) -> str | None:
        """What ``value`` breaks, e.g. ``">= 1"``; None when it is inside."""
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        tests = ((self.ge, ">=", operator.ge), (self.gt, ">", operator.gt),
                 (self.le, "<=", operator.le), (self.lt, "<", operator.lt))  # fmt: skip
        active = [(limit, sign, test) for limit, sign, test in tests if limit is not None]
        if math.isfinite(value) and all(test(value, limit) for limit, _, test in active):
            return None
        return " and ".join(f"{sign} {limit:g}" for limit, sign, _ in active) or "a finite number"


def bounded(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field with its default and its allowed range (checked by ``validate``)."""
    return field(default=default, metadata={BOUNDS: Bounds(ge, gt, le, lt)})


def validate(config: Any, where: str = "config") -> None:
    """Check every field's range and every ``check(where)`` consistency rule, nested included."""
    for item in fields(config):
        value = getattr(config, item.name)
        key = f"{where}.{item.name}"
        if dataclasses.is_dataclass(value):
            validate(value, key)
            continue
        bounds = item.metadata.get(BOUNDS)
        problem = bounds.violation(value) if bounds else None
        if problem:
            raise ConfigError(f"{key}: {value!r} is out of range; expected {problem}")
    check = getattr(config, "check", None)
    if callable(check):
        check(where)


class YamlConfig:
    """What every top-level config can do: load strictly from a dict or YAML, dump to a dict."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        config = _build(cls, raw, "config")
        validate(config)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        return cls.from_dict(read_yaml(path))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, following ``base:`` parents; ``ConfigError`` names the file."""
    return _read_with_bases(Path(path), ())


def _read_with_bases(path: Path, children: tuple[Path, ...]) -> dict[str, Any]:
    raw = _read_mapping(path)
    parent = raw.pop(BASE_KEY, None)
    if parent is None:
        return raw
    if not isinstance(parent, str) or not parent.split("#")[0]:
        raise ConfigError(f"{path}: {BASE_KEY} must be a file name (FILE or FILE#section)")
    file_name, _, section = parent.partition("#")
    parent_path = (path.parent / file_name).resolve()
    if parent_path in (*children, path.resolve()):
        raise ConfigError(f"{path}: {BASE_KEY} {parent} leads back to itself")
    inherited = _read_with_bases(parent_path, (*children, path.resolve()))
    for part in filter(None, section.split(".")):
        inherited = inherited.get(part)
        if not isinstance(inherited, dict):
            raise ConfigError(f"{path}: {BASE_KEY} {parent}: {parent_path} has no section {part}")
    return merge(inherited, raw)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: nested mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({_first_line(exc)})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return raw


def write_yaml(data: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` strings (value parsed as YAML) onto a nested dict, returning a copy."""
    merged = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. epochs=10")
        node = merged
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[leaf] = yaml.safe_load(value)
    return merged


def build_config(cls: type[T], raw: Any, where: str) -> T:
    """Build any config dataclass from a mapping with the checks above (for components' configs)."""
    config = _build(cls, raw, where)
    validate(config, where)
    return config


def _build(cls: type[T], raw: Any, where: str) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    valid = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in raw.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against a type hint, building nested dataclasses."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not a valid {_describe(hint)}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    if hint in (int, float, str, bool):
        if isinstance(value, bool) and hint is not bool:
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    return value


# YAML 1.1 reads "1e-4" (no dot in the mantissa) as a string; it is still meant as a number
_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _describe(hint: Any) -> str:
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(hint))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
