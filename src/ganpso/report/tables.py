"""The report's tables: a header and string rows, and the comparison's two tables built from cells.

Example:
    >>> print(markdown_table(summarise(cells)))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ganpso.metrics.statistics import METRICS
from ganpso.pipeline.folders import Cell
from ganpso.report.summary import CI_METRICS, Row, per_class_means


@dataclass
class Table:
    """A header and string rows; rendered to GitHub markdown here and to HTML by ``render``."""

    headers: list[str]
    rows: list[list[str]]

    def to_markdown(self) -> str:
        lines = [_markdown_line(self.headers), "|" + "---|" * len(self.headers)]
        lines += [_markdown_line(row) for row in self.rows]
        return "\n".join(lines)


def _markdown_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


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
