"""A zip archive or a folder seen the same way: relative file names and their bytes."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ganpso.errors import DataError

IGNORED_PARTS = ("__MACOSX", ".DS_Store", "Thumbs.db")


class FileTree:
    """Files of a zip (read in place, never extracted) or of a folder, by relative name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.archive: zipfile.ZipFile | None = None
        if path.is_file():
            try:
                self.archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError):
                raise DataError(f"{path}: not a readable zip archive") from None
            entries = self.archive.infolist()
            names = [i.filename for i in entries if not i.is_dir()]
            folders = [i.filename.rstrip("/") for i in entries if i.is_dir()]
        else:
            children = list(path.rglob("*"))
            names = [p.relative_to(path).as_posix() for p in children if p.is_file()]
            folders = [p.relative_to(path).as_posix() for p in children if p.is_dir()]
        self.names = sorted(n for n in names if not any(part in n for part in IGNORED_PARTS))
        # folders named in the source, also those without files (zip: explicit directory entries)
        self.folders = sorted({f for f in folders if not any(part in f for part in IGNORED_PARTS)})

    def read(self, name: str) -> bytes:
        try:
            if self.archive is not None:
                return self.archive.read(name)
            return (self.path / name).read_bytes()
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{self.display(name)}: cannot read ({exc})") from None

    def display(self, name: str) -> str:
        """How error messages name a member: ``archive.zip!train/angry/x.jpg`` or a path."""
        return f"{self.path}!{name}" if self.archive is not None else str(self.path / name)

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
