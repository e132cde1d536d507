"""A mixed search space (floats, ints, choices) mapped to and from the unit cube [0, 1]^dim.

The swarm only ever sees unit-cube coordinates, one per parameter; this module turns a coordinate
``u`` into a typed setting and back:

- ``FloatParam``: ``low + u (high - low)``, or geometric interpolation when ``log=True``.
- ``IntParam``: the same on ``[low - 0.5, high + 0.5]``, then rounded, so every integer owns an
  equally wide interval (equal width in log space when ``log=True``).
- ``ChoiceParam``: ``n`` equal-width bins, bin ``i`` -> ``choices[i]``.

``encode`` maps a setting to the centre of its interval, so ``decode(encode(x)) == x``.

Example:
    >>> space = SearchSpace.from_dict({
    ...     "lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
    ...     "epochs": {"type": "int", "low": 2, "high": 8},
    ...     "sampler": {"type": "choice", "choices": ["none", "oversample"]},
    ... })
    >>> space.decode(np.array([0.0, 0.5, 0.99]))
    {'lr': 0.001, 'epochs': 5, 'sampler': 'oversample'}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganpso.errors import ConfigError


def _check_bounds(name: str, low: Any, high: Any, log: bool, kind: type) -> None:
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise ConfigError(f"parameter {name!r}: bounds must be numbers, got {bound!r}")
        if kind is int and not float(bound).is_integer():
            raise ConfigError(f"parameter {name!r}: int bounds must be whole numbers, got {bound}")
        if not math.isfinite(bound):
            raise ConfigError(f"parameter {name!r}: bounds must be finite, got {bound}")
    if not low < high:
        raise ConfigError(f"parameter {name!r}: needs low < high, got low={low}, high={high}")
    if log and low <= 0:
        raise ConfigError(f"parameter {name!r}: log scale needs low > 0, got low={low}")


def _interpolate(u: float, low: float, high: float, log: bool) -> float:
    if u <= 0.0 or u >= 1.0:
        return low if u <= 0.0 else high  # exact bounds, free of exp/log rounding
    if log:
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def _unit(x: float, low: float, high: float, log: bool) -> float:
    if log:
        return (math.log(x) - math.log(low)) / (math.log(high) - math.log(low))
    return (x - low) / (high - low)


def _clip01(u: float) -> float:
    return min(max(float(u), 0.0), 1.0)


@dataclass(frozen=True)
class FloatParam:
    """A real number in ``[low, high]``; ``log=True`` spreads it evenly over orders of magnitude.

    Example:
        >>> round(FloatParam("lr", 1e-4, 1e-1, log=True).decode(0.5), 6)
        0.003162
    """

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds(self.name, self.low, self.high, self.log, float)

    def decode(self, u: float) -> float:
        value = _interpolate(_clip01(u), self.low, self.high, self.log)
        return min(max(value, self.low), self.high)  # exp/log rounding may step past a bound

    def encode(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"parameter {self.name!r}: expected a number, got {value!r}")
        if not self.low <= value <= self.high:
            raise ConfigError(
                f"parameter {self.name!r}: {value} is outside [{self.low}, {self.high}]"
            )
        return _clip01(_unit(float(value), self.low, self.high, self.log))


@dataclass(frozen=True)
class IntParam:
    """A whole number in ``[low, high]``; each integer gets an equal share of the unit interval.

    Example:
        >>> [IntParam("epochs", 2, 4).decode(u) for u in (0.0, 0.5, 1.0)]
        [2, 3, 4]
    """

    name: str
    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds(self.name, self.low, self.high, self.log, int)

    @property
    def _edges(self) -> tuple[float, float]:
        return self.low - 0.5, self.high + 0.5  # low >= 1 when log, so the lower edge is > 0

    def decode(self, u: float) -> int:
        value = _interpolate(_clip01(u), *self._edges, self.log)
        return int(min(max(math.floor(value + 0.5), self.low), self.high))

    def encode(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"parameter {self.name!r}: expected an integer, got {value!r}")
        if not float(value).is_integer() or not self.low <= value <= self.high:
            raise ConfigError(
                f"parameter {self.name!r}: {value} is not an integer in [{self.low}, {self.high}]"
            )
        return _clip01(_unit(float(value), *self._edges, self.log))


@dataclass(frozen=True)
class ChoiceParam:
    """One of a fixed list of values, chosen by equal-width bins of the unit interval.

    Example:
        >>> ChoiceParam("sampler", ("none", "oversample")).decode(0.7)
        'oversample'
    """

    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ConfigError(f"parameter {self.name!r}: choices must not be empty")
        if len({repr(c) for c in self.choices}) != len(self.choices):
            raise ConfigError(f"parameter {self.name!r}: choices must be distinct")

    def decode(self, u: float) -> Any:
        index = min(int(_clip01(u) * len(self.choices)), len(self.choices) - 1)
        return self.choices[index]

    def encode(self, value: Any) -> float:
        for index, choice in enumerate(self.choices):
            if type(choice) is type(value) and choice == value:  # keeps True apart from 1
                return (index + 0.5) / len(self.choices)
        raise ConfigError(f"parameter {self.name!r}: {value!r} is not one of {list(self.choices)}")


Param = FloatParam | IntParam | ChoiceParam
_KINDS: dict[str, type[Param]] = {"float": FloatParam, "int": IntParam, "choice": ChoiceParam}
_SPEC_KEYS = {"float": {"low", "high", "log"}, "int": {"low", "high", "log"}, "choice": {"choices"}}


class SearchSpace:
    """An ordered set of parameters; coordinate ``i`` of a unit-cube point drives ``params[i]``.

    Example:
        >>> space = SearchSpace([FloatParam("dropout", 0.0, 0.5), IntParam("epochs", 2, 8)])
        >>> space.dim
        2
        >>> space.decode(space.encode({"dropout": 0.25, "epochs": 3}))
        {'dropout': 0.25, 'epochs': 3}
    """

    def __init__(self, params: Sequence[Param]) -> None:
        names = [p.name for p in params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"search space: duplicate parameter name(s) {duplicates}")
        if not params:
            raise ConfigError("search space: needs at least one parameter")
        self.params: tuple[Param, ...] = tuple(params)

    @property
    def dim(self) -> int:
        return len(self.params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        """Unit-cube point ``(dim,)`` -> ``{name: typed value}``; coordinates clipped to [0, 1]."""
        u = np.asarray(u, dtype=float)
        if u.shape != (self.dim,):
            raise ValueError(f"expected a point of shape ({self.dim},), got {u.shape}")
        return {p.name: p.decode(float(x)) for p, x in zip(self.params, u, strict=True)}

    def encode(self, settings: dict[str, Any]) -> np.ndarray:
        """``{name: value}`` -> unit-cube point ``(dim,)``; names must match the space exactly."""
        missing = [n for n in self.names if n not in settings]
        unknown = sorted(set(settings) - set(self.names))
        if missing or unknown:
            raise ConfigError(
                f"search space: missing {missing}, unknown {unknown}; parameters: {self.names}"
            )
        return np.array([p.encode(settings[p.name]) for p in self.params], dtype=float)

    @classmethod
    def from_dict(cls, spec: dict[str, dict[str, Any]]) -> SearchSpace:
        """Build from a YAML-style mapping ``{name: {"type": float|int|choice, ...}}``."""
        if not isinstance(spec, dict):
            raise ConfigError(f"search space: expected a mapping, got {type(spec).__name__}")
        return cls([_param_from_dict(name, entry) for name, entry in spec.items()])

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The inverse of ``from_dict`` (plain types, safe to write as YAML or JSON)."""
        return {p.name: _param_to_dict(p) for p in self.params}


def _param_from_dict(name: str, entry: Any) -> Param:
    if not isinstance(entry, dict):
        raise ConfigError(f"parameter {name!r}: expected a mapping with a 'type' key")
    kind = entry.get("type")
    if kind not in _KINDS:
        raise ConfigError(f"parameter {name!r}: unknown type {kind!r}; valid types: {list(_KINDS)}")
    options = {k: v for k, v in entry.items() if k != "type"}
    unknown = sorted(set(options) - _SPEC_KEYS[kind])
    if unknown:
        raise ConfigError(
            f"parameter {name!r}: unknown key(s) {unknown} for type {kind}; "
            f"valid keys: {sorted(_SPEC_KEYS[kind])}"
        )
    if kind == "choice":
        if not isinstance(options.get("choices"), list | tuple):
            raise ConfigError(f"parameter {name!r}: 'choices' must be a list")
        return ChoiceParam(name, tuple(options["choices"]))
    if "low" not in options or "high" not in options:
        raise ConfigError(f"parameter {name!r}: type {kind} needs 'low' and 'high'")
    if not isinstance(options.get("log", False), bool):
        raise ConfigError(f"parameter {name!r}: 'log' must be true or false")
    low, high, log = options["low"], options["high"], options.get("log", False)
    if kind == "int":
        _check_bounds(name, low, high, log, int)
        return IntParam(name, int(low), int(high), log)
    _check_bounds(name, low, high, log, float)
    return FloatParam(name, float(low), float(high), log)


def _param_to_dict(param: Param) -> dict[str, Any]:
    if isinstance(param, ChoiceParam):
        return {"type": "choice", "choices": list(param.choices)}
    kind = "int" if isinstance(param, IntParam) else "float"
    return {"type": kind, "low": param.low, "high": param.high, "log": param.log}
