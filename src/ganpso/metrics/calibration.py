"""Calibration of predicted probabilities: reliability bins, expected calibration error, and the
temperature that makes them honest (Guo et al. 2017, "On Calibration of Modern Neural Networks").

Confidence is the top probability. With ``B`` equal-width bins over [0, 1],
ECE = sum_b (n_b / N) |accuracy_b - confidence_b|. Temperature scaling divides every logit by
one ``T > 0`` before the softmax; ``T`` minimises the negative log-likelihood on held-out faces,
which leaves each view's argmax as it was and changes how sure it sounds. With several views
per face (test-time augmentation) each view's logits are scaled, then the views' probabilities
averaged, as the predictor does; the average can then flip a near tie between two classes.

Example:
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4]]); labels = np.array([0, 1])
    >>> round(expected_calibration_error(probs, labels, bins=10), 3)
    0.35
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

DEFAULT_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS) -> dict:
    """Per equal-width confidence bin: count, mean confidence and accuracy (NaN when empty)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / counts
        accuracy = np.bincount(index, correct.astype(np.float64), bins) / counts
    return {
        "edges": np.linspace(0, 1, bins + 1).tolist(),
        "count": counts.tolist(),
        "confidence": mean_confidence.tolist(),
        "accuracy": accuracy.tolist(),
    }


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS
) -> float:
    table = reliability_bins(probs, labels, bins)
    counts = np.asarray(table["count"], np.float64)
    gaps = np.abs(np.nan_to_num(np.asarray(table["accuracy"]) - np.asarray(table["confidence"])))
    return float((counts * gaps).sum() / counts.sum())


def scaled_probabilities(view_logits: np.ndarray, temperature: float) -> np.ndarray:
    """``(V, N, K)`` logits of V views -> ``(N, K)`` mean softmax of ``logits / T``."""
    scaled = view_logits / temperature
    shifted = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).mean(axis=0)


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def fit_temperature(view_logits: np.ndarray, labels: np.ndarray) -> float:
    """The ``T`` in ``TEMPERATURE_RANGE`` of least negative log-likelihood (searched in log T)."""
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(
            scaled_probabilities(view_logits, float(np.exp(log_t))), labels
        ),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def calibration_summary(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    return {
        "ece": expected_calibration_error(probs, labels),
        "nll": negative_log_likelihood(probs, labels),
        "accuracy": float((probs.argmax(1) == labels).mean()),
        "mean_confidence": float(probs.max(1).mean()),
        "bins": reliability_bins(probs, labels),
    }
