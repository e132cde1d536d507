"""A generated block of a Markdown file: the text between two marker lines, rewritten from data.

Results tables in READMEs are generated from their JSON and sit between a begin and an end
marker, so a rerun rewrites them in place and a test can check the committed text against the
committed data.

Example:
    >>> text = "intro\\n<!-- b -->\\nold\\n<!-- e -->\\nafter"
    >>> replace_block(text, "<!-- b -->", "<!-- e -->", "new", Path("page.md"))
    'intro\\n<!-- b -->\\nnew\\n<!-- e -->\\nafter'
"""

from __future__ import annotations

from pathlib import Path

from ganpso.errors import ConfigError


def _split(text: str, begin: str, end: str, source: Path) -> tuple[str, str, str]:
    if begin not in text or end not in text.split(begin, 1)[1]:
        raise ConfigError(f"{source}: no generated-block markers ({begin!r} ... {end!r})")
    head, rest = text.split(begin, 1)
    block, tail = rest.split(end, 1)
    return head, block, tail


def replace_block(text: str, begin: str, end: str, content: str, source: Path) -> str:
    """``text`` with what lies between ``begin`` and ``end`` replaced by ``content``."""
    head, _, tail = _split(text, begin, end, source)
    return f"{head}{begin}\n{content}\n{end}{tail}"


def block_in(markdown: Path, begin: str, end: str) -> str:
    """The block now between the markers of ``markdown``."""
    return _split(markdown.read_text(), begin, end, markdown)[1].strip("\n")


def update_block(markdown: Path, begin: str, end: str, content: str) -> bool:
    """Rewrite the block between the markers of ``markdown``; True when it changed."""
    text = markdown.read_text()
    updated = replace_block(text, begin, end, content, markdown)
    markdown.write_text(updated)
    return updated != text
