"""The comparison of methods on PrivateTest: summary rows, paired tests and tables.

A *cell* is one finished (method, seed) evaluation: its ``metrics-PrivateTest.json`` report and
its predictions on the test images (``predictions-PrivateTest.npz``, ``y_true`` and ``y_pred``).
An external model evaluated once is a cell with ``seed=None``.

Intervals pool the seeds: each bootstrap replicate resamples the test images once (the same
indices for every seed and method), computes the metric for each seed and averages over seeds;
the 95 % interval is the 2.5th-97.5th percentile of those averages. With one seed and the same
``seed``/``n_boot`` it equals ``bootstrap_ci``.

The paired bootstrap of method A vs B uses those shared replicates: d_b = mean_s m(A_s) -
mean_s m(B_s) on replicate b; the interval is the percentiles of d_b and the two-sided p-value
is (1 + #{|d_b - d| >= |d|}) / (1 + n_boot), d the observed difference (the null shifted to 0).

Example:
    >>> cells = load_cells(Path("runs/main/compare"))  # doctest: +SKIP
    >>> print(markdown_table(summarise(cells)))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ganpso.emotions import EMOTIONS
from ganpso.metrics.classification import read_json

METRICS: dict[str, str] = {
    "accuracy": "accuracy",
    "macro_precision": "macro precision",
    "macro_recall": "macro recall",
    "macro_f1": "macro F1",
    "macro_g_measure": "macro G-measure",
    "g_mean": "G-mean",
    "disgust_recall": "disgust recall",
}
CI_METRICS: tuple[str, ...] = ("accuracy", "macro_f1")
REPLACED_DIR = "replaced"


@dataclass
class Cell:
    """One (method, seed) evaluation: the metrics report and, when saved, the predictions."""

    method: str
    seed: int | None
    metrics: dict[str, Any]
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    run: dict[str, Any] = field(default_factory=dict)  # cell.json: device, wall_seconds, ...

    @property
    def has_predictions(self) -> bool:
        return self.y_true is not None and self.y_pred is not None


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


@dataclass
class Table:
    """A header and string rows; rendered to GitHub markdown here and to HTML by the report."""

    headers: list[str]
    rows: list[list[str]]

    def to_markdown(self) -> str:
        lines = [_markdown_line(self.headers), "|" + "---|" * len(self.headers)]
        lines += [_markdown_line(row) for row in self.rows]
        return "\n".join(lines)


def _markdown_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


METRICS_FILE = "metrics-PrivateTest.json"
PREDICTIONS_FILE = "predictions-PrivateTest.npz"
RUN_FILE = "cell.json"  # device, seconds, seed of the cell


def write_predictions(path: str | Path, y_true: Any, y_pred: Any) -> None:
    """Save the predictions file (int64 ``y_true`` and ``y_pred``, test-image order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, y_true=np.asarray(y_true, np.int64), y_pred=np.asarray(y_pred, np.int64)
    )


def load_cell(cell_dir: Path, method: str, seed: int | None) -> Cell:
    """Read the metrics and, if present, the predictions and the cell record."""
    cell = Cell(method, seed, read_json(cell_dir / METRICS_FILE))
    if (cell_dir / PREDICTIONS_FILE).exists():
        with np.load(cell_dir / PREDICTIONS_FILE) as saved:
            cell.y_true, cell.y_pred = saved["y_true"], saved["y_pred"]
    if (cell_dir / RUN_FILE).exists():
        cell.run = read_json(cell_dir / RUN_FILE)
    return cell


def load_cells(compare_dir: Path) -> list[Cell]:
    """Cells of ``<method>/seed<k>/`` folders, and of ``<method>/`` holding its own metrics.

    ``replaced/`` holds cells made with an earlier recipe (``ganpso compare``): never read.
    """
    cells = []
    folders = (p for p in Path(compare_dir).iterdir() if p.is_dir() and p.name != REPLACED_DIR)
    for method_dir in sorted(folders):
        if (method_dir / METRICS_FILE).exists():
            cells.append(load_cell(method_dir, method_dir.name, None))
        for seed_dir in sorted(method_dir.glob("seed*"), key=_seed_of):
            if (seed_dir / METRICS_FILE).exists():
                cells.append(load_cell(seed_dir, method_dir.name, _seed_of(seed_dir)))
    return cells


def _seed_of(path: Path) -> int:
    suffix = path.name.removeprefix("seed")
    return int(suffix) if suffix.isdigit() else -1


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
    if name == "disgust_recall":
        return float(metrics["per_class"]["disgust"]["recall"])
    if name in ("accuracy", "g_mean"):
        return float(metrics[name])
    raise KeyError(f"unknown metric {name!r}; valid metrics: {list(METRICS)}")


def _batched_metric(matrices: np.ndarray, name: str, classes: Sequence[str]) -> np.ndarray:
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
    if name == "disgust_recall":
        return recall[..., list(classes).index("disgust")]
    raise KeyError(f"unknown metric {name!r}; valid metrics: {list(METRICS)}")


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _bootstrap_index(n_images: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, N)`` resampled test-image indices; drawn as ``bootstrap_ci`` draws them."""
    return np.random.default_rng(seed).integers(0, n_images, size=(n_boot, n_images))


def _replicate_matrices(
    y_true: np.ndarray, y_pred: np.ndarray, index: np.ndarray, k: int
) -> np.ndarray:
    """Confusion matrices ``(n_boot, K, K)`` of every bootstrap replicate (one bincount)."""
    n_boot = len(index)
    codes = y_true[index] * k + y_pred[index]  # (n_boot, N)
    codes += np.arange(n_boot)[:, None] * k * k
    return np.bincount(codes.ravel(), minlength=n_boot * k * k).reshape(n_boot, k, k)


def _seed_averaged_replicates(
    cells: Sequence[Cell], index: np.ndarray, name: str, classes: Sequence[str]
) -> np.ndarray:
    """``(n_boot,)``: the metric on each replicate, averaged over the cells (seeds)."""
    total = np.zeros(len(index))
    for cell in cells:
        matrices = _replicate_matrices(cell.y_true, cell.y_pred, index, len(classes))
        total += _batched_metric(matrices, name, classes)
    return total / len(cells)


def _shared_truth(cells: Sequence[Cell]) -> np.ndarray:
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


def pooled_ci(
    cells: Sequence[Cell], name: str, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the seed-averaged metric, resampling the test images."""
    index = _bootstrap_index(len(_shared_truth(cells)), n_boot, seed)
    values = _seed_averaged_replicates(cells, index, name, _classes(cells))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _row_ci(cells: Sequence[Cell], name: str, n_boot: int, seed: int) -> tuple[float, float] | None:
    if all(c.has_predictions for c in cells):
        return pooled_ci(cells, name, n_boot=n_boot, seed=seed)
    saved = cells[0].metrics.get(f"{name}_ci95")  # one external run: its own interval
    return (float(saved[0]), float(saved[1])) if len(cells) == 1 and saved else None


def provenance(cells: Sequence[Cell]) -> tuple[str, float | None]:
    """The devices (joined) and the mean wall seconds per run of some cells."""
    devices = sorted({str(c.run.get("device") or c.metrics.get("device") or "") for c in cells})
    walls = [c.run["wall_seconds"] for c in cells if c.run.get("wall_seconds") is not None]
    return "; ".join(d for d in devices if d), (float(np.mean(walls)) if walls else None)


def summarise(cells: Iterable[Cell], n_boot: int = 1000, seed: int = 0) -> list[Row]:
    """One row per method: mean and sample std (ddof=1) over seeds of every ``METRICS`` entry,
    pooled bootstrap 95 % intervals for accuracy and macro-F1, device and mean wall time."""
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
                ci95={k: _row_ci(group, k, n_boot, seed) for k in CI_METRICS},
                device=device,
                wall_seconds=wall,
            )
        )
    return rows


def _p_value(replicates: np.ndarray, observed: float) -> float:
    extreme = np.abs(replicates - observed) >= abs(observed) - 1e-12
    return float((1 + extreme.sum()) / (1 + len(replicates)))


def _seed_ttest(
    cells_a: Sequence[Cell], cells_b: Sequence[Cell], metric: str, classes: Sequence[str]
) -> tuple[int, float | None, float | None]:
    """Paired t-test over the seeds both methods ran (needs >= 3 pairs)."""
    by_seed_b = {c.seed: c for c in cells_b if c.seed is not None}
    pairs = [(a, by_seed_b[a.seed]) for a in cells_a if a.seed in by_seed_b]
    if len(pairs) < 3:
        return len(pairs), None, None
    a = [_cell_metric(cell, metric, classes) for cell, _ in pairs]
    b = [_cell_metric(cell, metric, classes) for _, cell in pairs]
    result = stats.ttest_rel(a, b)
    p = float(result.pvalue) if np.isfinite(result.pvalue) else 1.0  # identical pairs: 0/0
    t = float(result.statistic) if np.isfinite(result.statistic) else 0.0
    return len(pairs), t, p


def _cell_metric(cell: Cell, name: str, classes: Sequence[str]) -> float:
    matrix = np.bincount(
        cell.y_true * len(classes) + cell.y_pred, minlength=len(classes) ** 2
    ).reshape(len(classes), len(classes))
    return float(_batched_metric(matrix, name, classes))


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
    if metric not in METRICS:
        raise KeyError(f"unknown metric {metric!r}; valid metrics: {list(METRICS)}")
    truth = _shared_truth([*cells_a, *cells_b])
    classes = _classes(cells_a)
    index = _bootstrap_index(len(truth), n_boot, seed)
    replicates = _seed_averaged_replicates(cells_a, index, metric, classes)
    replicates -= _seed_averaged_replicates(cells_b, index, metric, classes)
    mean_a = float(np.mean([_cell_metric(c, metric, classes) for c in cells_a]))
    mean_b = float(np.mean([_cell_metric(c, metric, classes) for c in cells_b]))
    low, high = np.percentile(replicates, [2.5, 97.5])
    n_pairs, t, p = _seed_ttest(cells_a, cells_b, metric, classes)
    return PairedTest(
        metric=metric,
        method_a=cells_a[0].method,
        method_b=cells_b[0].method,
        mean_a=mean_a,
        mean_b=mean_b,
        difference=mean_a - mean_b,
        ci95=(float(low), float(high)),
        p_bootstrap=_p_value(replicates, mean_a - mean_b),
        n_boot=n_boot,
        n_pairs=n_pairs,
        t_statistic=t,
        p_ttest=p,
    )


def _mean_std(row: Row, name: str) -> str:
    std = row.std[name]
    return f"{row.mean[name]:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def _interval(ci: tuple[float, float] | None) -> str:
    return f"{ci[0]:.4f}–{ci[1]:.4f}" if ci else ""


def comparison_table(rows: Sequence[Row]) -> Table:
    """Mean ± std per metric, the 95 % intervals, device and wall time per method."""
    headers = ["method", "n", *METRICS.values(), "accuracy 95 % CI", "macro F1 95 % CI"]
    headers += ["device", "wall s / run"]
    body = []
    for row in rows:
        wall = f"{row.wall_seconds:,.0f}" if row.wall_seconds is not None else ""
        cells = [row.method, str(row.n), *(_mean_std(row, name) for name in METRICS)]
        cells += [_interval(row.ci95.get(name)) for name in CI_METRICS]
        body.append([*cells, row.device, wall])
    return Table(headers, body)


def markdown_table(rows: Sequence[Row]) -> str:
    """The comparison as a GitHub markdown table, one line per method."""
    return comparison_table(rows).to_markdown()


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


def per_class_table(cells: Iterable[Cell]) -> Table:
    """Mean per-class precision / recall / F1: one row per class, three columns per method."""
    means = per_class_means(cells)
    headers = ["class"] + [f"{m} {key}" for m in means for key in ("P", "R", "F1")]
    classes = list(next(iter(means.values()))["per_class"]) if means else []
    rows = [
        [name]
        + [
            f"{means[m]['per_class'][name][key]:.3f}"
            for m in means
            for key in ("precision", "recall", "f1")
        ]
        for name in classes
    ]
    return Table(headers, rows)


def mean_confusion(cells: Sequence[Cell]) -> np.ndarray:
    """The confusion matrix ``(K, K)`` averaged over the cells (seeds) of one method."""
    return np.mean([np.asarray(c.metrics["confusion_matrix"], float) for c in cells], axis=0)
