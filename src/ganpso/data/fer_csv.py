"""The original ``fer2013.csv``: ``emotion,pixels,Usage`` with 2304 space-separated pixels a row.

A CSV without ``Usage`` (Kaggle's competition ``train.csv``) gets a seeded stratified split.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganpso.data.dataset import FerDataset, stack_split
from ganpso.data.splitting import stratified_split
from ganpso.emotions import EMOTIONS, IMAGE_SIZE, SPLITS
from ganpso.errors import DataError

PIXELS = IMAGE_SIZE * IMAGE_SIZE
REQUIRED_COLUMNS = ("emotion", "pixels")

OnBadImage = Callable[[DataError], None]


def load_fer_csv(
    path: Path, on_bad_row: OnBadImage, split_seed: int, val_fraction: float, test_fraction: float
) -> FerDataset:
    images: list[np.ndarray] = []
    labels: list[int] = []
    usages: list[str] = []
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = [column.strip() for column in next(reader, [])]
        if not all(column in header for column in REQUIRED_COLUMNS):
            raise DataError(
                f"{path}: expected columns emotion,pixels,Usage, found {','.join(header) or 'none'}"
            )
        emotion_at, pixels_at = header.index("emotion"), header.index("pixels")
        usage_at = header.index("Usage") if "Usage" in header else None
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                label, face, usage = parse_row(row, emotion_at, pixels_at, usage_at)
            except DataError as error:
                on_bad_row(DataError(f"{path} line {line}: {error}"))
                continue
            images.append(face)
            labels.append(label)
            usages.append(usage)
    if not images:
        raise DataError(f"{path}: no rows with faces")
    if usage_at is None:
        usages = list(stratified_split(np.asarray(labels), split_seed, val_fraction, test_fraction))
    splits = {}
    for split in SPLITS:
        chosen = [i for i, usage in enumerate(usages) if usage == split]
        splits[split] = stack_split([images[i] for i in chosen], [labels[i] for i in chosen])
    return FerDataset(splits=splits, source=str(path), official_split=usage_at is not None)


def parse_row(
    row: list[str], emotion_at: int, pixels_at: int, usage_at: int | None
) -> tuple[int, np.ndarray, str]:
    if len(row) <= max(emotion_at, pixels_at, usage_at or 0):
        raise DataError(
            f"expected {max(emotion_at, pixels_at, usage_at or 0) + 1} fields, got {len(row)}"
        )
    try:
        label = int(row[emotion_at])
    except ValueError:
        raise DataError(f"emotion {row[emotion_at]!r} is not a number (expected 0..6)") from None
    if not 0 <= label < len(EMOTIONS):
        raise DataError(f"unknown emotion label {label} (expected 0..6)")
    tokens = row[pixels_at].split()
    if len(tokens) != PIXELS:
        raise DataError(f"expected {PIXELS} pixel values, got {len(tokens)}")
    try:
        values = np.fromstring(row[pixels_at], dtype=np.int64, sep=" ")
    except ValueError:
        values = np.zeros(0, np.int64)
    if values.size != PIXELS:
        bad = next((t for t in tokens if not t.lstrip("+-").isdigit()), tokens[0])
        raise DataError(f"pixel value {bad[:20]!r} is not an integer")
    if values.min() < 0 or values.max() > 255:
        raise DataError("pixel values must lie in 0..255")
    usage = row[usage_at].strip() if usage_at is not None else ""
    if usage_at is not None and usage not in SPLITS:
        raise DataError(f"unknown Usage {usage!r} (expected one of {', '.join(SPLITS)})")
    return label, values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE), usage
