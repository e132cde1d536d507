"""Has the GAN learnt its training faces by heart? Near-copies in pixels, and D's ``r_t``.

- Near-copies: each fake's pixel distance to its nearest Training image or mirror image of one
  (the GAN may be trained on mirrored faces), against the same distance for PublicTest images
  (real faces the GAN never saw, FER2013's own duplicates left out). A fake closer than the 1st
  percentile of those is a near-copy: unseen real faces are that close only 1 % of the time.
- The discriminator: per class, the mean sign of D's score on real faces (ADA's ``r_t``, +1:
  all called real; no augmentation) on Training faces against PublicTest faces; a gap means D
  has learnt that class's training faces by heart.

Example:
    >>> report = pixel_memorisation(fakes, fake_labels, train.images, public.images)
    >>> report["near_copy_fraction"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ganpso.emotions import EMOTIONS
from ganpso.gan.sample import from_uint8
from ganpso.metrics.distances import nearest_training_distances

NEAR_COPY_PERCENTILE = 1.0
# FER2013 itself repeats faces across splits (some PublicTest images are exact copies of Training
# images): they are left out of the reference distribution, or the near-copy threshold would be
# 0 and catch nothing.
DUPLICATE_DISTANCE = 1.0


def pixel_memorisation(
    fakes: np.ndarray, fake_labels: np.ndarray, train: np.ndarray, public: np.ndarray
) -> dict[str, Any]:
    """Near-copies among ``fakes`` (uint8 ``(N, 48, 48)``) of the ``train`` images, with the
    threshold taken from the ``public`` (unseen) images' distances to ``train``."""
    real_nn = nearest_training_distances(public, train)
    duplicates = real_nn < DUPLICATE_DISTANCE
    threshold = float(np.percentile(real_nn[~duplicates], NEAR_COPY_PERCENTILE))
    fake_nn = nearest_training_distances(fakes, train)
    return {
        "threshold": round(threshold, 4),
        "threshold_definition": f"{NEAR_COPY_PERCENTILE}th percentile of PublicTest-to-Training "
        "nearest-neighbour pixel distances (pixels in [0, 1], 48x48; Training and its "
        "left-right mirror images), PublicTest images that "
        f"duplicate a Training image (distance < {DUPLICATE_DISTANCE}) left out",
        "publictest_duplicating_training": round(float(duplicates.mean()), 4),
        "median_nn_distance_fake": round(float(np.median(fake_nn)), 4),
        "median_nn_distance_publictest": round(float(np.median(real_nn)), 4),
        "near_copy_fraction": round(float((fake_nn < threshold).mean()), 5),
        "near_copy_fraction_per_class": {
            name: round(float((fake_nn[fake_labels == k] < threshold).mean()), 5)
            for k, name in enumerate(EMOTIONS)
        },
    }


@torch.no_grad()
def realness_sign(
    discriminator: torch.nn.Module, faces: np.ndarray, label: int, device: torch.device
) -> float:
    """Mean sign of D's score for ``faces`` of class ``label`` (+1: all called real)."""
    signs = []
    for start in range(0, len(faces), 512):
        images = from_uint8(torch.from_numpy(faces[start : start + 512]).to(device))
        labels = torch.full((len(images),), label, dtype=torch.long, device=device)
        signs.append(discriminator(images, labels).float().sign().cpu())
    return float(torch.cat(signs).mean())


def discriminator_memorisation(
    discriminator: torch.nn.Module,
    seen: dict[int, np.ndarray],
    unseen: dict[int, np.ndarray],
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """Per class, D's ``r_t`` on faces it trained on (``seen``, class index -> uint8 faces) and
    on faces it never saw (``unseen``), and the gap between them."""
    report = {}
    for label, name in enumerate(EMOTIONS):
        on_seen = realness_sign(discriminator, seen[label], label, device)
        on_unseen = realness_sign(discriminator, unseen[label], label, device)
        report[name] = {
            "r_t_training": round(on_seen, 3),
            "r_t_publictest": round(on_unseen, 3),
            "gap": round(on_seen - on_unseen, 3),
        }
    return report
