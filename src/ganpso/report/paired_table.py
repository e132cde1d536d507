"""The table of a paired test of two arms, generated from ``paired_cells.py``'s JSON.

One line per measure: each seed's difference A - B, their mean with its 95 % t interval and the
paired t-test's p, and the paired bootstrap over the test images of the seeds that kept their
predictions. The table sits between marker lines of a Markdown file and a test checks the
committed table against the committed JSON.

    python -m ganpso.report.paired_table results/gan/downstream.json results/gan/README.md
"""

from __future__ import annotations

from typing import Any

from ganpso.metrics.statistics import METRICS
from ganpso.report.marked_block import GeneratedTable
from ganpso.report.tables import Table

BEGIN = "<!-- paired-test table: generated from its JSON by ganpso.report.paired_table -->"
END = "<!-- end of the paired-test table -->"


def signed(value: float) -> str:
    return f"{value:+.4f}"


def interval(ci: list[float] | None) -> str:
    return f"{signed(ci[0])} to {signed(ci[1])}" if ci else "-"


def seed_cells(record: dict[str, Any]) -> list[str]:
    """Each seed's A - B, as recorded from its cells' unrounded measures."""
    return [signed(value["diff"]) for value in record["per_seed"]]


def mean_cell(record: dict[str, Any]) -> str:
    return f"{signed(record['diff'])} ({interval(record['ci'])})"


def images_cell(record: dict[str, Any] | None) -> str:
    return "-" if record is None else f"{mean_cell(record)}, p {record['p']:.3f}"


def p_cell(p: float | None) -> str:
    return "-" if p is None else f"{p:.3f}"


def paired_table(data: dict[str, Any]) -> str:
    """The paired test of ``data`` (``paired_cells.py``'s JSON) as a Markdown table."""
    seeds = data["seeds"]
    image_seeds = next((t["images"]["seeds"] for t in data["tests"] if t["images"]), [])
    images_header = (
        f"images of seed{'s' if len(image_seeds) > 1 else ''} "
        f"{', '.join(str(s) for s in image_seeds)}: paired bootstrap (95 %)"
        if image_seeds
        else "images: paired bootstrap"
    )
    headers = [
        f"{data['split']}, {data['a']['method']} - {data['b']['method']}",
        *(f"seed {seed}" for seed in seeds),
        "mean over seeds (95 % t interval)",
        "paired t, p",
        images_header,
    ]
    rows = [
        [
            METRICS.get(test["metric"], test["metric"]),
            *seed_cells(test["seeds"]),
            mean_cell(test["seeds"]),
            p_cell(test["seeds"]["p_ttest"]),
            images_cell(test["images"]),
        ]
        for test in data["tests"]
    ]
    return Table(headers, rows).to_markdown()


TABLE = GeneratedTable(paired_table, BEGIN, END)


if __name__ == "__main__":
    TABLE.main(__doc__.splitlines()[0], "paired_cells.py's JSON")
