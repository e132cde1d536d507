"""The comparison's numbers from its cells: one row per method, and the paired test of two.

A row holds, per metric of ``METRICS``, the mean and sample std (ddof=1) over seeds, the pooled
bootstrap 95 % intervals of accuracy and macro-F1 (``ganpso.metrics.statistics``), the devices
and the mean wall time per run. A paired test compares two methods on the same test images.

Example:
    >>> rows = summarise(load_cells(Path("runs/main/compare")))  # doctest: +SKIP
    >>> rows[0].method, rows[0].mean["macro_f1"], rows[0].ci95["macro_f1"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganpso.emotions import EMOTIONS
from ganpso.metrics.statistics import (
    METRICS,
    check_metric,
    metric_of,
    paired_bootstrap,
    paired_ttest,
    pooled_ci,
)
from ganpso.pipeline.folders import PREDICTIONS_FILE, Cell

CI_METRICS: tuple[str, ...] = ("accuracy", "macro_f1")


@dataclass
class Row:
    """One method of the comparison: seed count, mean and std (None for one seed), intervals."""

    method: str
    n: int
    mean: dict[str, float]
    std: dict[str, float | None]
    ci95: dict[str, tuple[float, float] | None]
    device: str = ""
    wall_seconds: float | None = None  # mean over seeds


@dataclass
class PairedTest:
    """Method A minus method B on one metric over the same test images."""

    metric: str
    method_a: str
    method_b: str
    mean_a: float
    mean_b: float
    difference: float
    ci95: tuple[float, float]
    p_bootstrap: float
    n_boot: int
    n_pairs: int = 0  # seeds present in both (the t-test's pairs)
    t_statistic: float | None = None
    p_ttest: float | None = None


def group_by_method(cells: Iterable[Cell]) -> dict[str, list[Cell]]:
    """Cells per method, in first-seen order."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.method, []).append(cell)
    return groups


def metric_value(metrics: dict[str, Any], name: str) -> float:
    """One of ``METRICS`` from a metrics report."""
    if name.startswith("macro_"):
        return float(metrics["macro"][name.removeprefix("macro_")])
    emotion, _, score = name.rpartition("_")
    if name in METRICS and emotion in metrics["per_class"]:
        return float(metrics["per_class"][emotion][score])
    if name in ("accuracy", "g_mean"):
        return float(metrics[name])
    raise KeyError(f"unknown metric {name!r}; valid metrics: {list(METRICS)}")


def shared_truth(cells: Sequence[Cell]) -> np.ndarray:
    """The common ``y_true`` of cells with predictions; an error if they disagree."""
    missing = [f"{c.method}/seed{c.seed}" for c in cells if not c.has_predictions]
    if missing:
        raise ValueError(f"no {PREDICTIONS_FILE} for {missing}")
    truth = np.asarray(cells[0].y_true, np.int64)
    for cell in cells[1:]:
        if not np.array_equal(cell.y_true, truth):
            raise ValueError(f"{cell.method}/seed{cell.seed}: y_true differs from the others")
    return truth


def _classes(cells: Sequence[Cell]) -> list[str]:
    return list(cells[0].metrics.get("classes", EMOTIONS))


def _predictions(cells: Sequence[Cell]) -> list[np.ndarray]:
    return [np.asarray(c.y_pred, np.int64) for c in cells]


def _row_ci(cells: Sequence[Cell], name: str, n_boot: int, seed: int) -> tuple[float, float] | None:
    if all(c.has_predictions for c in cells):
        truth = shared_truth(cells)
        return pooled_ci(truth, _predictions(cells), name, _classes(cells), n_boot, seed)
    saved = cells[0].metrics.get(f"{name}_ci95")  # one external run: its own interval
    return (float(saved[0]), float(saved[1])) if len(cells) == 1 and saved else None


def on_gpu(cell: Cell) -> bool:
    """Whether the cell's model trained on a GPU (its record's device)."""
    return str(cell.run.get("device") or "").startswith("cuda")


def provenance(cells: Sequence[Cell]) -> tuple[str, float | None]:
    """The devices (joined) and the mean wall seconds per run of some cells."""
    devices = sorted({str(c.run.get("device") or c.metrics.get("device") or "") for c in cells})
    walls = [c.run["wall_seconds"] for c in cells if c.run.get("wall_seconds") is not None]
    return "; ".join(d for d in devices if d), (float(np.mean(walls)) if walls else None)


def summarise(
    cells: Iterable[Cell],
    n_boot: int = 1000,
    seed: int = 0,
    ci_metrics: Sequence[str] = CI_METRICS,
) -> list[Row]:
    """One row per method: mean and sample std (ddof=1) over seeds of every ``METRICS`` entry,
    pooled bootstrap 95 % intervals for ``ci_metrics``, device and mean wall time."""
    rows = []
    for method, group in group_by_method(cells).items():
        values = {
            name: np.array([metric_value(c.metrics, name) for c in group]) for name in METRICS
        }
        device, wall = provenance(group)
        rows.append(
            Row(
                method=method,
                n=len(group),
                mean={k: float(v.mean()) for k, v in values.items()},
                std={k: (float(v.std(ddof=1)) if len(v) > 1 else None) for k, v in values.items()},
                ci95={k: _row_ci(group, k, n_boot, seed) for k in ci_metrics},
                device=device,
                wall_seconds=wall,
            )
        )
    return rows


def _seed_ttest(
    cells_a: Sequence[Cell], cells_b: Sequence[Cell], metric: str, classes: Sequence[str]
) -> tuple[int, float | None, float | None]:
    """Paired t-test over the seeds both methods ran (needs >= 3 pairs)."""
    by_seed_b = {c.seed: c for c in cells_b if c.seed is not None}
    pairs = [(a, by_seed_b[a.seed]) for a in cells_a if a.seed in by_seed_b]
    if len(pairs) < 3:
        return len(pairs), None, None
    a = [metric_of(cell.y_true, cell.y_pred, metric, classes) for cell, _ in pairs]
    b = [metric_of(cell.y_true, cell.y_pred, metric, classes) for _, cell in pairs]
    t, p = paired_ttest(a, b)
    return len(pairs), t, p


def paired_test(
    cells_a: Sequence[Cell],
    cells_b: Sequence[Cell],
    metric: str = "macro_f1",
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedTest:
    """Method A vs B on the same test images: paired bootstrap of the seed-averaged difference,
    plus a paired t-test across seeds when both have >= 3 matching seeds.

    Example:
        >>> result = paired_test(groups["gan-pso"], groups["cnn"])  # doctest: +SKIP
        >>> result.difference, result.ci95, result.p_bootstrap  # doctest: +SKIP
    """
    check_metric(metric)
    truth = shared_truth([*cells_a, *cells_b])
    classes = _classes(cells_a)
    preds_a, preds_b = _predictions(cells_a), _predictions(cells_b)
    result = paired_bootstrap(truth, preds_a, preds_b, metric, classes, n_boot, seed)
    n_pairs, t, p = _seed_ttest(cells_a, cells_b, metric, classes)
    return PairedTest(
        metric=metric,
        method_a=cells_a[0].method,
        method_b=cells_b[0].method,
        mean_a=result.mean_a,
        mean_b=result.mean_b,
        difference=result.difference,
        ci95=result.ci95,
        p_bootstrap=result.p_value,
        n_boot=n_boot,
        n_pairs=n_pairs,
        t_statistic=t,
        p_ttest=p,
    )


def per_class_means(cells: Iterable[Cell]) -> dict[str, dict[str, Any]]:
    """Per method, ``{"per_class": {class: {precision, recall, f1}}}`` averaged over seeds
    (the shape ``plot_per_class_bars`` takes)."""
    out: dict[str, dict[str, Any]] = {}
    for method, group in group_by_method(cells).items():
        classes = list(group[0].metrics["per_class"])
        out[method] = {
            "per_class": {
                name: {
                    key: float(np.mean([c.metrics["per_class"][name][key] for c in group]))
                    for key in ("precision", "recall", "f1")
                }
                for name in classes
            }
        }
    return out


def mean_confusion(cells: Sequence[Cell]) -> np.ndarray:
    """The confusion matrix ``(K, K)`` averaged over the cells (seeds) of one method."""
    return np.mean([np.asarray(c.metrics["confusion_matrix"], float) for c in cells], axis=0)
