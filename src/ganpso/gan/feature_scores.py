"""Scores of a generator's faces in a classifier's feature space, class by class.

Inputs map a class index to features ``(n, d)``: ``fake`` (the GAN's faces), ``floor`` (real
Training faces, as many) and ``real`` (PublicTest). The floor against PublicTest is what real
data reaches with the same sample sizes; disgust, the rare class, is held against the mean of
the other six. Every distance comes from ``ganpso.metrics.distances``.

Example:
    >>> scores = distribution_scores(fake, floor, real)
    >>> scores["per_class"]["disgust"]["fid"], scores["overall"]["kid"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganpso.emotions import EMOTIONS
from ganpso.metrics.distances import (
    fid_at_real_size,
    frechet_distance,
    kernel_inception_distance,
    mean_pairwise_distance,
)

ClassFeatures = dict[int, np.ndarray]  # class index -> features (n, d)

RARE_CLASS = "disgust"
CLASSES = range(len(EMOTIONS))


# -- FID and KID, diversity ------------------------------------------------------------------
def distance_row(fake: np.ndarray, floor: np.ndarray, real: np.ndarray) -> dict[str, Any]:
    return {
        "n_fake": len(fake),
        "n_real": len(real),
        "fid": round(frechet_distance(fake, real), 3),
        "fid_floor": round(frechet_distance(floor, real), 3),
        "kid": round(kernel_inception_distance(fake, real), 5),
        "kid_floor": round(kernel_inception_distance(floor, real), 5),
    }


def distribution_scores(
    fake: ClassFeatures, floor: ClassFeatures, real: ClassFeatures
) -> dict[str, Any]:
    """FID/KID per class and overall (class mix of ``real``) for fakes and for the floor."""
    per_class = {name: distance_row(fake[k], floor[k], real[k]) for k, name in enumerate(EMOTIONS)}
    share = np.array([len(real[k]) for k in CLASSES], dtype=float)
    share /= share.sum()
    total = min(len(fake[k]) / share[k] for k in CLASSES)
    counts = [int(total * s) for s in share]
    mixed_fake = np.concatenate([fake[k][:c] for k, c in enumerate(counts)])
    mixed_floor = np.concatenate([floor[k][: min(c, len(floor[k]))] for k, c in enumerate(counts)])
    mixed_real = np.concatenate([real[k] for k in CLASSES])
    return {"per_class": per_class, "overall": distance_row(mixed_fake, mixed_floor, mixed_real)}


def diversity_ratios(fake: ClassFeatures, floor: ClassFeatures) -> dict[str, float]:
    """Per class, the fakes' mean pairwise feature distance over real Training images'."""
    return {
        name: round(mean_pairwise_distance(fake[k]) / mean_pairwise_distance(floor[k]), 4)
        for k, name in enumerate(EMOTIONS)
    }


# -- disgust against the other classes -------------------------------------------------------
def rare_class_ratios(fake: ClassFeatures, real: ClassFeatures, seed: int = 0) -> dict[str, float]:
    """Disgust's FID, KID and equal-real-size FID over the other classes' mean, for one draw.

    Disgust has far fewer PublicTest faces than the other classes, and FID's estimate carries a
    bias that grows as the sets shrink (its covariance is estimated from few points in many
    dimensions): ``fid_ratio_equal_real_size`` scores every class against real sets of
    disgust's size, so that only the fakes differ. KID is unbiased and needs no such matching.
    """
    rare = EMOTIONS.index(RARE_CLASS)
    others = [k for k in CLASSES if k != rare]
    size = len(real[rare])
    fid = {k: frechet_distance(fake[k], real[k]) for k in fake}
    kid = {k: kernel_inception_distance(fake[k], real[k]) for k in fake}
    fid_equal = {k: fid_at_real_size(fake[k], real[k], size, seed + k) for k in fake}
    return {
        "fid_ratio": fid[rare] / np.mean([fid[k] for k in others]),
        "kid_ratio": kid[rare] / np.mean([kid[k] for k in others]),
        "fid_ratio_equal_real_size": fid_equal[rare] / np.mean([fid_equal[k] for k in others]),
    }


def real_faces_reference(
    train_f: ClassFeatures, real_f: ClassFeatures, seed: int = 0
) -> dict[str, Any]:
    """``rare_class_ratios`` with real Training faces in place of fakes, as many per class as
    the rarest class has: what a generator that reproduced the data exactly would score."""
    size = min(len(v) for v in train_f.values())
    ratios = rare_class_ratios({k: v[:size] for k, v in train_f.items()}, real_f, seed)
    return {**{n: round(float(v), 3) for n, v in ratios.items()}, "training_faces_per_class": size}


def ratios_over_draws(draws: list[dict[str, float]]) -> dict[str, Any]:
    """Means (judged), spreads and each draw's value of ``rare_class_ratios``."""
    names = list(draws[0])
    spread = (
        {n: round(float(np.std([d[n] for d in draws], ddof=1)), 3) for n in names}
        if len(draws) > 1
        else None
    )
    return {
        **{n: round(float(np.mean([d[n] for d in draws])), 3) for n in names},
        "draws": len(draws),
        "std": spread,
        "per_draw": [{n: round(float(d[n]), 3) for n in names} for d in draws],
    }


def fid_excess_ratio(per_class: dict[str, dict[str, Any]]) -> float:
    """Disgust's FID above its real-vs-real floor over the other classes' mean excess.

    Disgust's floor is several times the others' (few PublicTest faces): the excess over each
    class's own floor separates the GAN's share from that sample-size effect.
    """
    others = [name for name in EMOTIONS if name != RARE_CLASS]
    excess = {name: per_class[name]["fid"] - per_class[name]["fid_floor"] for name in EMOTIONS}
    return excess[RARE_CLASS] / np.mean([excess[n] for n in others])
