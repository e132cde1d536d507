"""Small synthetic datasets for tests: learnable (each class has its own brightness pattern)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ganpso.data import FerDataset, Split
from ganpso.emotions import EMOTIONS, SPLITS

PREFIX = {"Training": "Training", "PublicTest": "PublicTest", "PrivateTest": "PrivateTest"}


def class_images(label: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 48, 48) uint8 faces-to-be: a bright band whose row depends on the class."""
    images = rng.integers(0, 90, size=(count, 48, 48), dtype=np.uint8)
    images[:, 6 * label : 6 * label + 6, :] = 230
    return images


def tiny_dataset(per_class: int = 6, seed: int = 0) -> FerDataset:
    rng = np.random.default_rng(seed)
    splits = {}
    for split in SPLITS:
        images = np.concatenate([class_images(k, per_class, rng) for k in range(len(EMOTIONS))])
        labels = np.repeat(np.arange(len(EMOTIONS), dtype=np.int64), per_class)
        splits[split] = Split(images=images, labels=labels)
    return FerDataset(splits=splits, source="synthetic")


def write_kaggle_zip(path: Path, per_class: int = 4, seed: int = 0) -> Path:
    """A FER2013 Kaggle-layout zip: train/<class>/Training_i.jpg, test/<class>/<Split>_i.jpg."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for split in SPLITS:
            folder = "train" if split == "Training" else "test"
            for label, name in enumerate(EMOTIONS):
                for i, image in enumerate(class_images(label, per_class, rng)):
                    buffer = io.BytesIO()
                    Image.fromarray(image).save(buffer, format="PNG")
                    archive.writestr(
                        f"{folder}/{name}/{PREFIX[split]}_{label}{i}.jpg", buffer.getvalue()
                    )
    return path
