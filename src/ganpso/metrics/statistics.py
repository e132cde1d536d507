"""Statistics of methods compared on one test set: bootstrap intervals and paired tests.

Every function takes the shared labels ``y_true`` ``(N,)`` and, per seed, a method's predictions
``y_pred`` ``(N,)``. Intervals pool the seeds: each bootstrap replicate resamples the test images
once (the same indices for every seed and method), computes the metric for each seed and averages
over seeds; the 95 % interval is the 2.5th-97.5th percentile of those averages. With one seed and
the same ``seed``/``n_boot`` it equals ``bootstrap_ci``.

The paired bootstrap of method A vs B uses those shared replicates: d_b = mean_s m(A_s) -
mean_s m(B_s) on replicate b; the interval is the percentiles of d_b and the two-sided p-value
is (1 + #{|d_b - d| >= |d|}) / (1 + n_boot), d the observed difference (the null shifted to 0).

Example:
    >>> y = np.arange(70) % 7
    >>> pooled_ci(y, [y, y], "accuracy", n_boot=10)
    (1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ganpso.emotions import EMOTIONS
from ganpso.metrics.classification import _divide

METRICS: dict[str, str] = {
    "accuracy": "accuracy",
    "macro_precision": "macro precision",
    "macro_recall": "macro recall",
    "macro_f1": "macro F1",
    "macro_g_measure": "macro G-measure",
    "g_mean": "G-mean",
    # one class's score: the rare classes the GAN is for
    "disgust_recall": "disgust recall",
    "disgust_f1": "disgust F1",
    "fear_f1": "fear F1",
}


def check_metric(name: str) -> None:
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; valid metrics: {list(METRICS)}")


def metric_from_matrices(
    matrices: np.ndarray, name: str, classes: Sequence[str] = EMOTIONS
) -> np.ndarray:
    """``name`` of each confusion matrix of ``(..., K, K)`` -> ``(...)`` (0 where 0/0)."""
    matrices = matrices.astype(np.float64)
    true_positive = np.diagonal(matrices, axis1=-2, axis2=-1)  # (..., K)
    if name == "accuracy":
        return true_positive.sum(-1) / matrices.sum((-2, -1))
    precision = _divide(true_positive, matrices.sum(axis=-2))
    recall = _divide(true_positive, matrices.sum(axis=-1))
    per_class = {
        "macro_precision": precision,
        "macro_recall": recall,
        "macro_f1": _divide(2 * precision * recall, precision + recall),
        "macro_g_measure": np.sqrt(precision * recall),
    }
    if name in per_class:
        return per_class[name].mean(-1)
    if name == "g_mean":
        return np.prod(recall, axis=-1) ** (1 / recall.shape[-1])
    emotion, _, score = name.rpartition("_")
    if name in METRICS and emotion in classes:
        index = list(classes).index(emotion)
        f1 = _divide(2 * precision * recall, precision + recall)
        return {"recall": recall, "f1": f1}[score][..., index]
    raise KeyError(f"unknown metric {name!r}; valid metrics: {list(METRICS)}")


def metric_of(
    y_true: np.ndarray, y_pred: np.ndarray, name: str, classes: Sequence[str] = EMOTIONS
) -> float:
    """``name`` of one set of predictions."""
    k = len(classes)
    matrix = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    return float(metric_from_matrices(matrix, name, classes))


def bootstrap_index(n_images: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, N)`` resampled test-image indices; drawn as ``bootstrap_ci`` draws them."""
    return np.random.default_rng(seed).integers(0, n_images, size=(n_boot, n_images))


def replicate_matrices(
    y_true: np.ndarray, y_pred: np.ndarray, index: np.ndarray, k: int
) -> np.ndarray:
    """Confusion matrices ``(n_boot, K, K)`` of every bootstrap replicate (one bincount)."""
    n_boot = len(index)
    codes = y_true[index] * k + y_pred[index]  # (n_boot, N)
    codes += np.arange(n_boot)[:, None] * k * k
    return np.bincount(codes.ravel(), minlength=n_boot * k * k).reshape(n_boot, k, k)


def seed_averaged_replicates(
    y_true: np.ndarray,
    y_preds: Sequence[np.ndarray],
    index: np.ndarray,
    name: str,
    classes: Sequence[str] = EMOTIONS,
) -> np.ndarray:
    """``(n_boot,)``: the metric on each replicate, averaged over the seeds' predictions."""
    total = np.zeros(len(index))
    for y_pred in y_preds:
        matrices = replicate_matrices(y_true, y_pred, index, len(classes))
        total += metric_from_matrices(matrices, name, classes)
    return total / len(y_preds)


def pooled_ci(
    y_true: np.ndarray,
    y_preds: Sequence[np.ndarray],
    name: str,
    classes: Sequence[str] = EMOTIONS,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of the seed-averaged metric, resampling the test images."""
    index = bootstrap_index(len(y_true), n_boot, seed)
    values = seed_averaged_replicates(y_true, y_preds, index, name, classes)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedBootstrap:
    """Mean of A minus mean of B over seeds, its interval and two-sided p-value."""

    mean_a: float
    mean_b: float
    difference: float
    ci95: tuple[float, float]
    p_value: float


def paired_bootstrap(
    y_true: np.ndarray,
    preds_a: Sequence[np.ndarray],
    preds_b: Sequence[np.ndarray],
    name: str,
    classes: Sequence[str] = EMOTIONS,
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedBootstrap:
    """Method A vs B on the same test images (the module docstring's d_b)."""
    check_metric(name)
    index = bootstrap_index(len(y_true), n_boot, seed)
    replicates = seed_averaged_replicates(y_true, preds_a, index, name, classes)
    replicates -= seed_averaged_replicates(y_true, preds_b, index, name, classes)
    mean_a = float(np.mean([metric_of(y_true, y, name, classes) for y in preds_a]))
    mean_b = float(np.mean([metric_of(y_true, y, name, classes) for y in preds_b]))
    low, high = np.percentile(replicates, [2.5, 97.5])
    return PairedBootstrap(
        mean_a,
        mean_b,
        mean_a - mean_b,
        (float(low), float(high)),
        bootstrap_p_value(replicates, mean_a - mean_b),
    )


def bootstrap_p_value(replicates: np.ndarray, observed: float) -> float:
    extreme = np.abs(replicates - observed) >= abs(observed) - 1e-12
    return float((1 + extreme.sum()) / (1 + len(replicates)))


def paired_ttest(values_a: Sequence[float], values_b: Sequence[float]) -> tuple[float, float]:
    """t statistic and two-sided p of a paired t-test (pairs: the same seed)."""
    result = stats.ttest_rel(values_a, values_b)
    p = float(result.pvalue) if np.isfinite(result.pvalue) else 1.0  # identical pairs: 0/0
    t = float(result.statistic) if np.isfinite(result.statistic) else 0.0
    return t, p
