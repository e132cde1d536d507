"""Decoded datasets cached as uncompressed ``.npz``, keyed by the source's files and options.

The key hashes every source file's relative name, size and modification time, so any change to
the source is read again; a corrupt cache file is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ganpso.data.config import DataConfig
from ganpso.data.dataset import FerDataset, Split
from ganpso.emotions import SPLITS

LOADER_VERSION = "ganpso-data/2"


def cache_key(path: Path, config: DataConfig) -> str:
    digest = hashlib.sha256()
    options = {
        "version": LOADER_VERSION,
        "source": str(path.resolve()),
        "skip_bad_images": config.skip_bad_images,
        "unknown_classes": config.unknown_classes,
        "class_map": {k.lower(): v for k, v in sorted(config.class_map.items())},
        "ignore_classes": sorted(c.lower() for c in config.ignore_classes),
        "split_seed": config.split_seed,
        "val_fraction": config.val_fraction,
        "test_fraction": config.test_fraction,
    }
    digest.update(json.dumps(options, sort_keys=True).encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        stat = file.stat()
        name = file.relative_to(path) if file != path else ""
        digest.update(f"{name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def cache_path(cache_dir: str, key: str) -> Path:
    return Path(cache_dir).expanduser() / f"dataset-{key}.npz"


def read_cache(path: Path) -> FerDataset | None:
    """The cached dataset, or None when absent or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            splits = {s: Split(archive[f"{s}/images"], archive[f"{s}/labels"]) for s in SPLITS}
            meta = json.loads(str(archive["meta"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    return FerDataset(
        splits=splits,
        source=meta["source"],
        skipped=tuple(meta["skipped"]),
        official_split=bool(meta.get("official_split", True)),
    )


def write_cache(path: Path, dataset: FerDataset) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, split in dataset.splits.items():
        arrays[f"{name}/images"] = split.images
        arrays[f"{name}/labels"] = split.labels
    arrays["meta"] = np.array(
        json.dumps(
            {
                "source": dataset.source,
                "skipped": list(dataset.skipped),
                "official_split": dataset.official_split,
            }
        )
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".dataset-", suffix=".npz")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except OSError:
        return  # a cache that cannot be written only costs speed next time
