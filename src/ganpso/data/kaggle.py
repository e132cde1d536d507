"""The Kaggle FER2013 layout: ``train/<class>/Training_*.jpg``, ``test/<class>/<Split>_*.jpg``.

The official split is the file-name prefix; the class is the folder name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ganpso.data.dataset import FerDataset, stack_split
from ganpso.data.images import decode_image, is_image_name
from ganpso.data.tree import FileTree
from ganpso.emotions import EMOTIONS, SPLITS
from ganpso.errors import DataError

OnBadImage = Callable[[DataError], None]


def is_kaggle_layout(tree: FileTree) -> bool:
    return any(kaggle_entry(name) is not None for name in tree.names)


def kaggle_entry(name: str) -> tuple[str, str] | None:
    """``(split, class)`` of a member like ``train/angry/Training_3.jpg``, else None."""
    parts = name.split("/")
    if len(parts) < 3 or parts[-3] not in ("train", "test") or not is_image_name(parts[-1]):
        return None
    split = parts[-1].split("_", 1)[0]
    return (split, parts[-2]) if split in SPLITS else None


def load_kaggle(tree: FileTree, on_bad_image: OnBadImage) -> FerDataset:
    """Decode every face; ``on_bad_image`` raises (stop) or records (skip) each bad one."""
    images: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    labels: dict[str, list[int]] = {s: [] for s in SPLITS}
    folders_seen: set[str] = set()
    for name in tree.names:
        entry = kaggle_entry(name)
        if entry is None:
            continue
        split, class_name = entry
        folders_seen.add(name.rsplit("/", 1)[0])
        if class_name not in EMOTIONS:
            raise DataError(
                f"{tree.display(name)}: unknown class folder {class_name!r}; "
                f"expected one of {list(EMOTIONS)}"
            )
        try:
            face = decode_image(tree.read(name), tree.display(name))
        except DataError as error:
            on_bad_image(error)
            continue
        images[split].append(face)
        labels[split].append(EMOTIONS.index(class_name))
    for folder in tree.folders:
        parts = folder.split("/")
        if len(parts) >= 2 and parts[-2] in ("train", "test") and folder not in folders_seen:
            raise DataError(f"{tree.display(folder)}: empty class folder (no images)")
    if not any(images.values()):
        raise DataError(f"{tree.path}: no readable FER2013 images in train/ or test/")
    splits = {s: stack_split(images[s], labels[s]) for s in SPLITS}
    return FerDataset(splits=splits, source=str(tree.path))
