"""The search's fitness: one number from the mission's five measures on PublicTest.

A setting is judged by accuracy, macro precision, macro recall (TPR), macro F1 and macro
G-measure, so the fitness is their weighted mean, ``sum_m w_m s_m / sum_m w_m``; by default every
weight is 1 (the plain mean of the five). ``{"macro_f1": 1}`` judges by macro-F1 alone, as the
search did before.

Example:
    >>> fitness({"accuracy": 0.7, "macro_precision": 0.7, "macro_recall": 0.6,
    ...          "macro_f1": 0.65, "macro_g_measure": 0.65}, DEFAULT_WEIGHTS)
    0.66
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganpso.errors import ConfigError

MEASURES = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_g_measure")
DEFAULT_WEIGHTS: dict[str, float] = dict.fromkeys(MEASURES, 1.0)


def check_weights(weights: Mapping[str, Any], where: str) -> None:
    """Known measures, non-negative numbers, at least one positive."""
    unknown = sorted(set(weights) - set(MEASURES))
    if unknown:
        raise ConfigError(f"{where}: unknown measures {unknown}; valid: {list(MEASURES)}")
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
            raise ConfigError(f"{where}.{name}: {weight!r} must be a number >= 0")
    if not any(weight > 0 for weight in weights.values()):
        raise ConfigError(f"{where}: needs at least one positive weight")


def measures_of(scores: Mapping[str, Any]) -> dict[str, float]:
    """The five measures of a ``classification_metrics`` report."""
    macro = scores["macro"]
    return {
        "accuracy": float(scores["accuracy"]),
        "macro_precision": float(macro["precision"]),
        "macro_recall": float(macro["recall"]),
        "macro_f1": float(macro["f1"]),
        "macro_g_measure": float(macro["g_measure"]),
    }


def fitness(values: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """The weighted mean of ``values`` over the measures ``weights`` names."""
    total = sum(weights.values())
    return round(sum(w * values[name] for name, w in weights.items()) / total, 10)
