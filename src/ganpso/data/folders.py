"""Any folder (or zip) of class sub-folders: CK+, JAFFE, a user's own photos.

Each image's class is its parent folder's name, mapped through the config's ``class_map`` and
then ALIASES (case-insensitive). Folders in ``ignore_classes`` are skipped; other classes outside
the seven are dropped with a warning or refused; a seeded stratified split stands in for the
official one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import PurePosixPath

import numpy as np

from ganpso.data.config import DataConfig
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


def class_of(folder_name: str, class_map: dict[str, str] | None = None) -> str | None:
    key = folder_name.strip().lower()
    mapped = {name.strip().lower(): emotion for name, emotion in (class_map or {}).items()}
    return mapped.get(key) or ALIASES.get(key)


def load_class_folders(
    tree: FileTree,
    on_bad_image: OnBadImage,
    config: DataConfig,
    split_seed: int,
    val_fraction: float,
    test_fraction: float,
) -> FerDataset:
    ignored = {name.strip().lower() for name in config.ignore_classes}

    def emotion_of(folder: str) -> str | None:
        return class_of(PurePosixPath(folder).name, config.class_map)

    by_folder: dict[str, list[str]] = {}
    for name in tree.names:
        if is_image_name(name) and "/" in name:
            by_folder.setdefault(str(PurePosixPath(name).parent), []).append(name)
    by_folder = {
        f: names for f, names in by_folder.items() if PurePosixPath(f).name.lower() not in ignored
    }
    for folder in tree.folders:
        if folder not in by_folder and emotion_of(folder) is not None:
            raise DataError(f"{tree.display(folder)}: empty class folder (no images)")
    if not by_folder:
        raise DataError(
            f"{tree.path}: no class sub-folders with images (expected e.g. angry/, happy/)"
        )
    unknown = sorted({PurePosixPath(f).name for f in by_folder if emotion_of(f) is None})
    if unknown and config.unknown_classes == "error":
        raise DataError(
            f"{tree.path}: class folder(s) {unknown} are not among the model's classes "
            f"{list(EMOTIONS)}; map them (--map NAME=EMOTION) or skip them (--ignore NAME)"
        )
    if unknown:
        warnings.warn(
            f"{tree.path}: dropped class folder(s) {unknown} (not among the seven emotions)",
            stacklevel=3,
        )

    images: list[np.ndarray] = []
    labels: list[int] = []
    for folder, names in sorted(by_folder.items()):
        emotion = emotion_of(folder)
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
    return FerDataset(splits=splits, source=str(tree.path), official_split=False)
