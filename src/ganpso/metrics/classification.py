"""Classification metrics from the confusion matrix, and the ``metrics.json`` report.

For class c, counted one-vs-rest: precision = TP / (TP + FP), recall (true positive rate) =
TP / (TP + FN), F1 = 2PR / (P + R), G-measure = sqrt(P R), specificity = TN / (TN + FP).
Macro values are unweighted means over classes; G-mean is the geometric mean of the per-class
recalls. A division by zero gives 0, as scikit-learn's ``zero_division=0``. With
``present_only`` the means run over the classes that have test images (a user's own data set
may lack some of the model's classes), and the report names them in ``macro_classes``.

Example:
    >>> m = classification_metrics([0, 1, 1], [0, 1, 0], classes=("a", "b"))
    >>> m["accuracy"], m["per_class"]["b"]["recall"]
    (0.6666666666666666, 0.5)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.emotions import EMOTIONS
from ganpso.files import write_json_atomic


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Counts ``(K, K)``: rows are true classes, columns predicted classes."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, f1, g_measure, specificity and support from counts."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = _divide(true_positive, predicted)
    recall = _divide(true_positive, support)
    f1 = _divide(2 * precision * recall, precision + recall)
    negatives = matrix.sum() - support
    false_positive = predicted - true_positive
    specificity = _divide(negatives - false_positive, negatives)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "g_measure": np.sqrt(precision * recall),
        "specificity": specificity,
        "support": support.astype(np.int64),
    }


def averaged_classes(y_true: Any, num_classes: int, present_only: bool) -> np.ndarray:
    """Indices of the classes that macro means run over: all, or those with test images."""
    if not present_only:
        return np.arange(num_classes)
    return np.flatnonzero(np.bincount(np.asarray(y_true, np.int64), minlength=num_classes))


def classification_metrics(
    y_true: Any, y_pred: Any, classes: Sequence[str] = EMOTIONS, present_only: bool = False
) -> dict[str, Any]:
    """Accuracy, macro and per-class scores, G-mean and the confusion matrix (plain Python)."""
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    scores = per_class_scores(matrix)
    total = matrix.sum()
    averaged = averaged_classes(y_true, len(classes), present_only)
    recalls = scores["recall"][averaged]
    return {
        "accuracy": float(np.trace(matrix) / total) if total else 0.0,
        "macro": {
            key: float(scores[key][averaged].mean()) if len(averaged) else 0.0
            for key in ("precision", "recall", "f1", "g_measure")
        },
        "macro_classes": [classes[k] for k in averaged],
        "g_mean": float(np.prod(recalls) ** (1 / len(recalls))) if len(recalls) else 0.0,
        "per_class": {
            name: {
                key: (int(values[k]) if key == "support" else float(values[k]))
                for key, values in scores.items()
            }
            for k, name in enumerate(classes)
        },
        "confusion_matrix": matrix.tolist(),
    }


def bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    present_only: bool = False,
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals (resampling test images) for accuracy and macro-F1."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(y_true), size=(n_boot, len(y_true)))  # (n_boot, N)
    cells = y_true[index] * num_classes + y_pred[index]
    offsets = np.arange(n_boot)[:, None] * num_classes * num_classes
    counts = np.bincount((cells + offsets).ravel(), minlength=n_boot * num_classes**2)
    matrices = counts.reshape(n_boot, num_classes, num_classes).astype(np.float64)
    true_positive = np.diagonal(matrices, axis1=1, axis2=2)  # (n_boot, K)
    precision = _divide(true_positive, matrices.sum(axis=1))
    recall = _divide(true_positive, matrices.sum(axis=2))
    averaged = averaged_classes(y_true, num_classes, present_only)
    macro_f1 = _divide(2 * precision * recall, precision + recall)[:, averaged].mean(axis=1)
    accuracy = true_positive.sum(axis=1) / len(y_true)
    tail = (1 - level) / 2 * 100
    return {
        name: [float(v) for v in np.percentile(values, [tail, 100 - tail])]
        for name, values in (("accuracy", accuracy), ("macro_f1", macro_f1))
    }


def build_metrics_report(
    y_true: Any,
    y_pred: Any,
    *,
    split: str,
    classes: Sequence[str] = EMOTIONS,
    device: str,
    seconds: float,
    command: str,
    n_boot: int = 1000,
    seed: int = 0,
    present_only: bool = False,
) -> dict[str, Any]:
    """The ``metrics.json`` schema that every stage and report reads, in its key order."""
    scores = classification_metrics(y_true, y_pred, classes, present_only)
    intervals = bootstrap_ci(
        y_true, y_pred, len(classes), n_boot=n_boot, seed=seed, present_only=present_only
    )
    return {
        "split": split,
        "n": len(np.asarray(y_true)),
        "classes": list(classes),
        "accuracy": scores["accuracy"],
        "accuracy_ci95": intervals["accuracy"],
        "macro": scores["macro"],
        "macro_classes": scores["macro_classes"],
        "macro_f1_ci95": intervals["macro_f1"],
        "g_mean": scores["g_mean"],
        "per_class": scores["per_class"],
        "confusion_matrix": scores["confusion_matrix"],
        "device": device,
        "seconds": round(float(seconds), 3),
        "command": command,
    }


def format_metrics_table(report: dict[str, Any]) -> str:
    """A terminal table: one row per class, the macro row, accuracy and G-mean."""
    header = (
        f"{'class':10s} {'precision':>9s} {'recall':>7s} {'F1':>7s} {'G-meas':>7s} {'support':>8s}"
    )
    lines = [f"{report.get('split', '')} (n={report.get('n', '')})", header]
    for name, row in report["per_class"].items():
        lines.append(
            f"{name:10s} {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:7.4f} "
            f"{row['g_measure']:7.4f} {row['support']:8d}"
        )
    macro = report["macro"]
    lines.append(
        f"{'macro':10s} {macro['precision']:9.4f} {macro['recall']:7.4f} {macro['f1']:7.4f} "
        f"{macro['g_measure']:7.4f}"
    )
    ci = report.get("accuracy_ci95")
    interval = f" (95% CI {ci[0]:.4f}-{ci[1]:.4f})" if ci else ""
    lines.append(f"accuracy {report['accuracy']:.4f}{interval}  G-mean {report['g_mean']:.4f}")
    return "\n".join(lines)


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically (temporary file beside ``path``, then rename)."""
    write_json_atomic(obj, path)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
