"""Any folder (or zip) of class sub-folders: CK+, JAFFE, a user's own photos.

Each image's class is its parent folder's name, mapped through ALIASES (case-insensitive).
Classes outside the seven are dropped with a warning or refused; a seeded stratified split
stands in for the official one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import PurePosixPath

import numpy as np

from ganpso.data.dataset import FerDataset, stack_split
from ganpso.data.images import decode_image, is_image_name
from ganpso.data.splitting import stratified_split
from ganpso.data.tree import FileTree
from ganpso.emotions import EMOTIONS, SPLITS
from ganpso.errors import DataError

ALIASES: dict[str, str] = {
    **{name: name for name in EMOTIONS},
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "calm": "neutral",
}

OnBadImage = Callable[[DataError], None]


def class_of(folder_name: str) -> str | None:
    return ALIASES.get(folder_name.strip().lower())


def load_class_folders(
    tree: FileTree,
    on_bad_image: OnBadImage,
    unknown_classes: str,
    split_seed: int,
    val_fraction: float,
    test_fraction: float,
) -> FerDataset:
    by_folder: dict[str, list[str]] = {}
    for name in tree.names:
        if is_image_name(name) and "/" in name:
            by_folder.setdefault(str(PurePosixPath(name).parent), []).append(name)
    for folder in tree.folders:
        if folder not in by_folder and class_of(PurePosixPath(folder).name) is not None:
            raise DataError(f"{tree.display(folder)}: empty class folder (no images)")
    if not by_folder:
        raise DataError(
            f"{tree.path}: no class sub-folders with images (expected e.g. angry/, happy/)"
        )
    unknown = sorted(
        {PurePosixPath(f).name for f in by_folder if class_of(PurePosixPath(f).name) is None}
    )
    if unknown and unknown_classes == "error":
        raise DataError(
            f"{tree.path}: class folder(s) {unknown} are not among the seven emotions "
            f"{list(EMOTIONS)} (set data.unknown_classes: drop to skip them)"
        )
    if unknown:
        warnings.warn(
            f"{tree.path}: dropped class folder(s) {unknown} (not among the seven emotions)",
            stacklevel=3,
        )

    images: list[np.ndarray] = []
    labels: list[int] = []
    for folder, names in sorted(by_folder.items()):
        emotion = class_of(PurePosixPath(folder).name)
        if emotion is None:
            continue
        for name in names:
            try:
                images.append(decode_image(tree.read(name), tree.display(name)))
            except DataError as error:
                on_bad_image(error)
                continue
            labels.append(EMOTIONS.index(emotion))
    if not images:
        raise DataError(f"{tree.path}: no readable images in the emotion folders")
    assignment = stratified_split(np.asarray(labels), split_seed, val_fraction, test_fraction)
    splits = {}
    for split in SPLITS:
        chosen = np.flatnonzero(assignment == split)
        splits[split] = stack_split([images[i] for i in chosen], [labels[i] for i in chosen])
    return FerDataset(splits=splits, source=str(tree.path))
