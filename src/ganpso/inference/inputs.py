"""What ``ganpso predict`` accepts: image files, folders (searched recursively) and zip archives.

Each input becomes ``(name, read)`` items; ``read()`` returns the bytes or raises a one-line
``DataError``, so a bad file is reported in its place and never stops the batch.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ganpso.data.images import is_image_name
from ganpso.errors import DataError

Reader = Callable[[], bytes]


def iter_inputs(inputs: Iterable[str | Path]) -> Iterator[tuple[str, Reader]]:
    """Every image named by ``inputs``, in order; folders and zips are expanded sorted."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p.name))
            if not files:
                yield str(path), failing_reader(DataError(f"{path}: no images in this folder"))
            for file in files:
                yield str(file), file_reader(file)
        elif path.suffix.lower() == ".zip" and path.is_file():
            yield from zip_members(path)
        else:
            yield str(path), file_reader(path)


def file_reader(path: Path) -> Reader:
    def read() -> bytes:
        if not path.exists():
            raise DataError(f"{path}: no such file or directory")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None

    return read


def zip_members(path: Path) -> Iterator[tuple[str, Reader]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        yield str(path), failing_reader(DataError(f"{path}: not a readable zip archive"))
        return
    with archive:
        names = sorted(n for n in archive.namelist() if is_image_name(n) and not n.endswith("/"))
        if not names:
            yield str(path), failing_reader(DataError(f"{path}: no images in this zip archive"))
        for name in names:
            label = f"{path}:{name}"
            try:
                data = archive.read(name)
            except (zipfile.BadZipFile, OSError, ValueError):
                yield label, failing_reader(DataError(f"{label}: corrupt zip member"))
                continue
            yield label, (lambda data=data: data)


def failing_reader(error: DataError) -> Reader:
    def read() -> bytes:
        raise error

    return read
