"""A generated block of a Markdown file: the text between two marker lines, rewritten from data.

Results tables in READMEs are generated from their JSON and sit between a begin and an end
marker, so a rerun rewrites them in place and a test can check the committed text against the
committed data.

Example:
    >>> table = GeneratedTable(lambda data: f"n = {data['n']}", "<!-- b -->", "<!-- e -->")
    >>> table.update(Path("data.json"), Path("README.md"))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganpso.errors import ConfigError, DataError, GanpsoError
from ganpso.files import atomic_write


def _split(text: str, begin: str, end: str, source: Path) -> tuple[str, str, str]:
    if begin not in text or end not in text.split(begin, 1)[1]:
        raise ConfigError(f"{source}: no generated-block markers ({begin!r} ... {end!r})")
    head, rest = text.split(begin, 1)
    block, tail = rest.split(end, 1)
    return head, block, tail


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from None


def _data(path: Path) -> dict[str, Any]:
    try:
        return json.loads(_read(path))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from None


@dataclass(frozen=True)
class GeneratedTable:
    """A table rendered from one JSON file into the block between two markers of a page."""

    render: Callable[[dict[str, Any]], str]
    begin: str
    end: str

    def update(self, data_file: Path, markdown: Path) -> bool:
        """Rewrite the block of ``markdown`` from ``data_file``; True when it changed."""
        text = _read(markdown)
        head, _, tail = _split(text, self.begin, self.end, markdown)
        try:
            table = self.render(_data(data_file))
        except (KeyError, TypeError) as error:
            raise DataError(f"{data_file}: not the JSON this table reads ({error})") from None
        updated = f"{head}{self.begin}\n{table}\n{self.end}{tail}"
        if updated == text:
            return False
        atomic_write(markdown, lambda tmp: Path(tmp).write_text(updated))
        return True

    def in_file(self, markdown: Path) -> str:
        """The block now between the markers of ``markdown``."""
        return _split(_read(markdown), self.begin, self.end, markdown)[1].strip("\n")

    def main(self, description: str, data_help: str) -> None:
        """The command line: ``DATA.json PAGE.md``; says whether the page changed."""
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("data", type=Path, help=data_help)
        parser.add_argument("markdown", type=Path, help="the file holding the table's markers")
        args = parser.parse_args()
        try:
            changed = self.update(args.data, args.markdown)
        except GanpsoError as error:
            parser.exit(2, f"error: {error}\n")
        print(f"{args.markdown}: table {'rewritten' if changed else 'already up to date'}")
