"""The README's results table, generated from ``comparison.json`` and kept in step with it.

The table sits between two marker lines in a Markdown file; ``TABLE.update`` rewrites what lies
between them, and a test checks the committed README against the committed JSON, so the table
cannot drift from the data.

    python -m ganpso.report.readme_table results/compare/comparison.json README.md

Example:
    >>> data = json.loads(Path("results/compare/comparison.json").read_text())  # doctest: +SKIP
    >>> print(readme_table(data))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from ganpso.pipeline.compare import METHODS
from ganpso.report.comparison_data import is_method_row
from ganpso.report.ensembles import ENSEMBLE_SUFFIX
from ganpso.report.marked_block import GeneratedTable
from ganpso.report.tables import Table

BEGIN = "<!-- comparison table: generated from comparison.json by ganpso.report.readme_table -->"
END = "<!-- end of the comparison table -->"
HEADERS = [
    "method",
    "seeds",
    "accuracy",
    "macro precision",
    "macro recall",
    "macro F1 (95 % CI)",
    "macro G-measure",
    "CPU s",
    "GPU s",
]


def mean_std(measure: dict[str, Any], percent: bool = False) -> str:
    scale, unit = (100.0, " %") if percent else (1.0, "")
    text = f"{measure['mean'] * scale:.2f}{unit}" if percent else f"{measure['mean']:.3f}"
    if measure.get("std") is not None:
        text += f" ± {measure['std'] * scale:.2f}" if percent else f" ± {measure['std']:.3f}"
    return text


def with_interval(measure: dict[str, Any]) -> str:
    ci = measure.get("ci")
    return mean_std(measure) + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else "")


def seconds(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def is_ensemble(row: dict[str, Any]) -> bool:
    return bool(row.get("ensemble_of"))


def best_of(rows: list[dict[str, Any]], name: str) -> str:
    """The method with the highest mean of ``name`` among trained rows (several seeds, or an
    ensemble of them)."""
    trained = [row for row in rows if len(row["seeds"]) > 1 or is_ensemble(row)] or rows
    return max(trained, key=lambda row: row[name]["mean"])["method"]


def row_title(method: str) -> str:
    """A method's title; a seed ensemble (a method of its own aside) is named by its members'."""
    base = method.removesuffix(ENSEMBLE_SUFFIX)
    if method in METHODS:
        title = METHODS[method].title
    elif base in METHODS:
        title = f"seed ensemble: {METHODS[base].title}"
    else:
        title = method
    return f"**{title}** (`{method}`)" if is_method_row(method) else f"{title} (`{method}`)"


def readme_table(data: dict[str, Any]) -> str:
    """Single models, then seed ensembles (equal inference cost within each part), each by
    macro-F1; the best trained row of each measure within its part in bold; the device line."""
    table = Table(HEADERS, [])
    for ensembles in (False, True):
        part = [row for row in data["rows"] if is_ensemble(row) == ensembles]
        table.rows += part_rows(sorted(part, key=lambda row: -row["macro_f1"]["mean"]))
    return table.to_markdown() + f"\n\nDevices: {data.get('device', '')}."


def part_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    measures = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_g_measure")
    best = {name: best_of(rows, name) for name in measures} if rows else {}
    lines = []
    for row in rows:
        method = row["method"]
        cells = [
            mean_std(row["accuracy"], percent=True),
            mean_std(row["macro_precision"]),
            mean_std(row["macro_recall"]),
            with_interval(row["macro_f1"]),
            mean_std(row["macro_g_measure"]),
        ]
        cells = [
            f"**{cell}**" if best[name] == method else cell
            for name, cell in zip(measures, cells, strict=True)
        ]
        members = row.get("ensemble_of")
        seeds = ", ".join(str(s) for s in members or row["seeds"]) or "-"
        compute = [seconds(row.get("cpu_seconds")), seconds(row.get("gpu_seconds"))]
        lines.append([row_title(method), seeds, *cells, *compute])
    return lines


TABLE = GeneratedTable(readme_table, BEGIN, END)


if __name__ == "__main__":
    TABLE.main(__doc__.splitlines()[0], "comparison.json")
