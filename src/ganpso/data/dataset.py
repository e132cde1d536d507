"""In-memory FER datasets: uint8 faces and labels per official split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ganpso.emotions import EMOTIONS, SPLITS


@dataclass(frozen=True)
class Split:
    """One split: faces ``(N, 48, 48)`` uint8 and labels ``(N,)`` int64 indexing EMOTIONS.

    ``weights`` (float32 ``(N,)``), when present, scales each image's training loss: synthetic
    images added by the GAN carry a weight below 1.
    """

    images: np.ndarray
    labels: np.ndarray
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(EMOTIONS)).astype(np.int64)


@dataclass(frozen=True)
class FerDataset:
    """The three splits of one source (``Training``, ``PublicTest``, ``PrivateTest``)."""

    splits: dict[str, Split]
    source: str
    skipped: tuple[str, ...] = field(default=())
    # False for sources without an official split: a seeded stratified one stands in
    official_split: bool = True

    def __getitem__(self, name: str) -> Split:
        if name not in self.splits:
            raise KeyError(f"unknown split {name!r}; valid splits: {list(self.splits)}")
        return self.splits[name]

    def with_split(self, name: str, split: Split) -> FerDataset:
        """A copy with ``name`` replaced (e.g. Training plus GAN faces); the others are shared."""
        return FerDataset(
            {**self.splits, name: split}, self.source, self.skipped, self.official_split
        )

    def whole(self) -> Split:
        """Every image of every split together (a user's own folder, scored as one set)."""
        parts = list(self.splits.values())
        return Split(
            np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
        )

    def summary(self) -> str:
        """Per-class counts per split as a small text table."""
        width = max(len(e) for e in EMOTIONS)
        lines = [f"{'split':12s} " + " ".join(f"{e:>{width}s}" for e in EMOTIONS) + "   total"]
        for name in SPLITS:
            if name in self.splits:
                counts = self.splits[name].class_counts()
                cells = " ".join(f"{c:>{width}d}" for c in counts)
                lines.append(f"{name:12s} {cells} {counts.sum():7d}")
        return "\n".join(lines)


def stack_split(images: list[np.ndarray], labels: list[int]) -> Split:
    if not images:
        return Split(np.zeros((0, 48, 48), np.uint8), np.zeros(0, np.int64))
    return Split(np.stack(images).astype(np.uint8), np.asarray(labels, dtype=np.int64))
