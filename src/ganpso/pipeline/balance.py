"""Balancing Training with GAN faces: how many per class, which ones to keep, what they weigh.

Each class ``k`` with ``n_k`` real images receives ``max(0, round(r_k * max_j n_j) - n_k)`` fakes,
where ``r_k`` is ``ratio`` or the class's own entry in ``class_ratios``. Candidates are drawn from
the generator in fixed chunks from one seed per class, so the first ``m`` candidates never depend
on how many are drawn: a PSO evaluation (which picks from a pre-drawn pool) and a later
``ganpso train`` with the same settings see the same faces. The filter keeps the candidates to
which the real-data classifier gives at least ``filter_confidence`` for their own class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganpso.classifier.config import SyntheticConfig
from ganpso.data import Split
from ganpso.emotions import EMOTIONS
from ganpso.errors import ConfigError
from ganpso.gan import load_generator, synthesize
from ganpso.inference import EmotionPredictor

CHUNK = 500  # latent draws per call of the generator; fixed so that draws are prefix-stable
MAX_DRAW_FACTOR = 4  # candidates drawn per needed fake, at most, before giving up on the filter


def synthetic_counts(
    real_counts: np.ndarray, ratio: float, class_ratios: dict[str, float]
) -> np.ndarray:
    """Fakes to add per class so that class ``k`` reaches ``r_k`` x the largest real class."""
    unknown = sorted(set(class_ratios) - set(EMOTIONS))
    if unknown:
        raise ConfigError(f"synthetic.class_ratios: unknown classes {unknown}; valid: {EMOTIONS}")
    ratios = np.array([class_ratios.get(name, ratio) for name in EMOTIONS], dtype=np.float64)
    if (ratios < 0).any():
        raise ConfigError("synthetic ratios must be >= 0")
    targets = np.round(ratios * real_counts.max()).astype(np.int64)
    return np.maximum(targets - real_counts, 0)


def draw_candidates(
    generator: torch.nn.Module,
    label: int,
    count: int,
    seed: int,
    truncation: float | None = None,
) -> np.ndarray:
    """The first ``count`` faces of class ``label`` for this seed (uint8 ``(count, 48, 48)``)."""
    drawn = math.ceil(count / CHUNK) * CHUNK
    faces = synthesize(
        generator, label, drawn, seed=seed * 100 + label, batch_size=CHUNK, truncation=truncation
    )
    return faces[:count]


@dataclass
class SyntheticPool:
    """Pre-drawn candidates per class with the filter classifier's confidence in their class."""

    images: list[np.ndarray]
    confidence: list[np.ndarray]

    def select(self, label: int, count: int, threshold: float) -> np.ndarray:
        """The first ``count`` candidates of ``label`` passing ``threshold`` (fewer if short)."""
        keep = np.flatnonzero(self.confidence[label] >= threshold)[:count]
        return self.images[label][keep]

    def save(self, path: Path) -> None:
        arrays = {f"images_{k}": v for k, v in enumerate(self.images)}
        arrays |= {f"confidence_{k}": v for k, v in enumerate(self.confidence)}
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> SyntheticPool:
        with np.load(path) as archive:
            classes = range(len(EMOTIONS))
            return cls(
                [archive[f"images_{k}"] for k in classes],
                [archive[f"confidence_{k}"] for k in classes],
            )


def class_confidence(faces: np.ndarray, label: int, predictor: EmotionPredictor) -> np.ndarray:
    """Probability the real-data classifier gives each face for class ``label``."""
    if len(faces) == 0:
        return np.zeros(0, np.float32)
    return predictor.predict_faces(faces)[:, label].astype(np.float32)


def build_pool(
    config: SyntheticConfig, sizes: np.ndarray, device: str | torch.device = "cpu"
) -> SyntheticPool:
    """Draw ``sizes[k]`` candidates of each class and score them with the filter classifier."""
    if not config.generator:
        raise ConfigError("synthetic.generator is not set: no GAN to draw faces from")
    generator, _ = load_generator(Path(config.generator), device)
    predictor = EmotionPredictor.from_pretrained(config.filter_classifier)
    images, confidence = [], []
    for label, size in enumerate(sizes):
        faces = draw_candidates(generator, label, int(size), config.seed, config.truncation)
        images.append(faces)
        confidence.append(class_confidence(faces, label, predictor))
    return SyntheticPool(images, confidence)


def combine(real: Split, fakes: list[np.ndarray], weight: float) -> Split:
    """Real images (weight 1) followed by the fakes of each class (weight ``weight``)."""
    labels = [np.full(len(f), k, dtype=np.int64) for k, f in enumerate(fakes)]
    real_weights = real.weights if real.weights is not None else np.ones(len(real), np.float32)
    return Split(
        np.concatenate([real.images, *fakes]),
        np.concatenate([real.labels, *labels]),
        np.concatenate(
            [real_weights, np.full(sum(len(f) for f in fakes), weight, dtype=np.float32)]
        ),
    )


def add_synthetic(
    real: Split,
    config: SyntheticConfig,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = print,
) -> Split:
    """Training plus the GAN faces that ``config`` asks for (see the module docstring)."""
    counts = synthetic_counts(real.class_counts(), config.ratio, config.class_ratios)
    if counts.sum() == 0:
        return real
    factor = MAX_DRAW_FACTOR if config.filter_confidence > 0 else 1
    pool = build_pool(config, counts * factor, device)
    fakes = [pool.select(k, int(n), config.filter_confidence) for k, n in enumerate(counts)]
    log_shortage(counts, fakes, config.filter_confidence, log)
    return combine(real, fakes, config.weight)


def log_shortage(
    counts: np.ndarray, fakes: list[np.ndarray], threshold: float, log: Callable[[str], None]
) -> None:
    added = ", ".join(f"{EMOTIONS[k]} {len(f)}" for k, f in enumerate(fakes) if counts[k])
    log(f"synthetic faces added: {added}")
    for k, faces in enumerate(fakes):
        if len(faces) < counts[k]:
            log(
                f"warning: only {len(faces)} of {counts[k]} {EMOTIONS[k]} fakes pass the filter "
                f"(confidence >= {threshold:.3f})"
            )
