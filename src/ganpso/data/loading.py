"""``load_dataset``: find what kind of source a path is, read it (or its cache), trim it."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganpso.data.cache import cache_key, cache_path, read_cache, write_cache
from ganpso.data.config import DataConfig
from ganpso.data.dataset import FerDataset, Split
from ganpso.data.fer_csv import load_fer_csv
from ganpso.data.folders import load_class_folders
from ganpso.data.kaggle import is_kaggle_layout, load_kaggle
from ganpso.data.tree import FileTree
from ganpso.errors import DataError


def load_dataset(config: DataConfig) -> FerDataset:
    """Load ``config.source``: a FER2013 zip or folder, ``fer2013.csv``, or class folders.

    Decoded arrays are cached under ``config.cache_dir`` (None disables the cache). A relative
    source is read from the working directory, or else from the project checkout the package
    runs from (see ``locate_source``).
    """
    path = locate_source(config.source)
    cached = cache_path(config.cache_dir, cache_key(path, config)) if config.cache_dir else None
    dataset = read_cache(cached) if cached else None
    if dataset is None:
        dataset = read_source(path, config)
        if cached:
            write_cache(cached, dataset)
    if dataset.skipped:
        warnings.warn(
            f"skipped {len(dataset.skipped)} bad image(s); first: {dataset.skipped[0]}",
            stacklevel=2,
        )
    if config.limit_per_class is not None:
        dataset = limit_per_class(dataset, config.limit_per_class)
    return dataset


def locate_source(source: str) -> Path:
    """The file or folder to read for ``source``.

    A relative path is tried from the working directory first and then from the checkout of an
    editable install (the folder holding ``pyproject.toml`` above ``src/ganpso``), so that the
    built-in profiles' ``../shared/data/fer2013.zip`` is found from any working directory.
    """
    path = Path(source).expanduser()
    if path.exists():
        return path
    if path.is_absolute():
        raise DataError(f"{path}: no such file or directory")
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "pyproject.toml").is_file() and (checkout / path).exists():
        return (checkout / path).resolve()
    raise DataError(
        f"{path}: no such file or directory (relative to {Path.cwd()}); "
        "give the dataset with --data PATH or --set data.source=PATH"
    )


def read_source(path: Path, config: DataConfig) -> FerDataset:
    skipped: list[str] = []

    def on_bad_image(error: DataError) -> None:
        if not config.skip_bad_images:
            raise error
        skipped.append(str(error))

    split_options = (config.split_seed, config.val_fraction, config.test_fraction)
    if path.is_file() and path.suffix.lower() == ".csv":
        dataset = load_fer_csv(path, on_bad_image, *split_options)
    elif path.is_dir() or path.suffix.lower() == ".zip":
        tree = FileTree(path)
        try:
            if is_kaggle_layout(tree):
                dataset = load_kaggle(tree, on_bad_image)
            else:
                dataset = load_class_folders(tree, on_bad_image, config, *split_options)
        finally:
            tree.close()
    else:
        raise DataError(f"{path}: not a FER2013 zip/folder/CSV or a folder of class sub-folders")
    return replace(dataset, skipped=tuple(skipped))


def limit_per_class(dataset: FerDataset, limit: int) -> FerDataset:
    """Keep the first ``limit`` images of each class in each split (order preserved)."""
    splits = {}
    for name, split in dataset.splits.items():
        keep = np.sort(
            np.concatenate(
                [np.flatnonzero(split.labels == k)[:limit] for k in np.unique(split.labels)]
                or [np.zeros(0, np.int64)]
            )
        )
        splits[name] = Split(split.images[keep], split.labels[keep])
    return replace(dataset, splits=splits)
