"""Rendering report sections: GitHub markdown, and one self-contained HTML page.

Both render one list of ``Section`` (title, paragraphs, tables, figures), so they never disagree.
The HTML embeds every PNG as a base64 data URI and has inline CSS only.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from ganpso.report.tables import Table

TITLE = "GAN-PSO: facial emotion recognition on FER2013"


@dataclass
class Figure:
    """A PNG inside the report folder and its caption (which names device and wall time)."""

    path: Path
    caption: str


@dataclass
class Section:
    """One report section; paragraphs use only ``*em*``, ``**strong**`` and ```code```."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def to_markdown(sections: list[Section], out_dir: Path, title: str = TITLE) -> str:
    """GitHub markdown; figures are linked relative to ``out_dir``."""
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        parts += section.paragraphs
        parts += [table.to_markdown() for table in section.tables]
        parts += [
            f"![{f.caption}]({f.path.relative_to(out_dir).as_posix()})\n\n*{f.caption}*"
            for f in section.figures
        ]
    return "\n\n".join(parts) + "\n"


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}"
    "img{max-width:100%}figure{margin:1em 0}figcaption{font-size:.9em;color:#555}"
)


def to_html(sections: list[Section], title: str = TITLE) -> str:
    """One self-contained page: inline CSS, PNGs as base64 data URIs, no external reference."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{_inline(section.title)}</h2>")
        body += [f"<p>{_inline(text)}</p>" for text in section.paragraphs]
        body += [_html_table(table) for table in section.tables]
        body += [_html_figure(figure) for figure in section.figures]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _inline(text: str) -> str:
    """Escape, then the three markdown inline forms the sections use."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{_inline(h)}</th>" for h in table.headers)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _html_figure(figure: Figure) -> str:
    data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    alt = html.escape(figure.caption, quote=True)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
        f"<figcaption>{_inline(figure.caption)}</figcaption></figure>"
    )
