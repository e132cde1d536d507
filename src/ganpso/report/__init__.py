"""``write_report``: one run folder -> ``report.md`` and a self-contained ``report.html``.

Both files render one list of ``Section`` (``render``), built from the run folder's files only
(``sections``; the comparison's numbers come from ``summary``, its tables from ``tables``).
Inputs, each optional (a missing one gives a *not run* note):

    compare/<method>/seed<k>/{metrics-PrivateTest.json, predictions-PrivateTest.npz, cell.json}
    gan/gan-metrics.json, gan/samples.png                                    GAN quality and grid
    search/history.json, search/convergence.png                          the PSO search
    final/metrics-PrivateTest.json                                       the final model

Example:
    >>> md_path, html_path = write_report(Path("runs/main"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from ganpso.pipeline.compare import METHODS
from ganpso.pipeline.folders import REPORT_DIR, load_cells
from ganpso.report.render import TITLE, Section, to_html, to_markdown
from ganpso.report.sections import (
    anchors_section,
    comparison_section,
    confusion_section,
    final_section,
    gan_section,
    paired_section,
    per_class_section,
    search_section,
)
from ganpso.report.summary import group_by_method

__all__ = ["TITLE", "build_sections", "write_report"]


def _method_rank(name: str) -> int:
    """The comparison's own order (baselines, GAN rows, GAN-PSO, external); others last."""
    order = list(METHODS)
    return order.index(name) if name in order else len(order)


def build_sections(
    run_dir: Path,
    out_dir: Path,
    treatment: str = "ganpso",
    control: str = "cnn",
    compare_dir: Path | None = None,
) -> list[Section]:
    """Every section of the report, in order; figures are written into ``out_dir``."""
    compare = compare_dir or run_dir / "compare"
    groups = group_by_method(load_cells(compare)) if compare.is_dir() else {}
    groups = dict(sorted(groups.items(), key=lambda item: _method_rank(item[0])))
    return [
        comparison_section(groups),
        paired_section(groups, treatment, control),
        per_class_section(groups, out_dir),
        confusion_section(groups, out_dir),
        gan_section(run_dir, out_dir),
        search_section(run_dir, out_dir),
        final_section(run_dir),
        anchors_section(),
    ]


def write_report(
    run_dir: Path,
    out_dir: Path | None = None,
    *,
    treatment: str = "ganpso",
    control: str = "cnn",
    compare_dir: Path | None = None,
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` (default folder: ``run_dir/report``).

    ``treatment`` and ``control`` name the comparison's methods of the paired macro-F1 test;
    the comparison's cells are read from ``compare_dir`` (default: ``run_dir/compare``).
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = build_sections(run_dir, out_dir, treatment, control, compare_dir)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(to_markdown(sections, out_dir))
    html_path.write_text(to_html(sections))
    return md_path, html_path
