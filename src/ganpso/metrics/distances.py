"""Distances between sets of images or of feature vectors: FID, KID, nearest neighbours, spread.

Plain math on arrays, with no notion of where the features come from (``ganpso.gan.evaluation``
feeds them a classifier's features and the GAN's faces). Features are ``(n, d)`` float arrays;
images are uint8 ``(n, 48, 48)``, compared as pixels in ``[0, 1]``. Torch serves only as a fast
array library here (float32 matrix products for the nearest-neighbour search).

Example:
    >>> import numpy as np
    >>> a = np.random.default_rng(0).normal(size=(500, 4))
    >>> round(frechet_distance(a, a), 6)
    0.0
"""

from __future__ import annotations

import numpy as np
import torch

EQUAL_SIZE_REPEATS = 10  # random real subsets per call of ``fid_at_real_size``, FID averaged


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between feature sets ``(n, d)`` and ``(m, d)``:
    ``|mu_a - mu_b|^2 + tr(A) + tr(B) - 2 tr sqrt(A B)`` with ``A``, ``B`` their covariances."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) = tr sqrt(sqrt(A) B sqrt(A)): a symmetric PSD form, solved by eigh
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)
    trace_root = np.sqrt(cross).sum()
    return float(
        ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    )


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = 50, subset_size: int = 500, seed: int = 0
) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel ``(x.y / d + 1)^3``, averaged over
    ``subsets`` random subsets of ``subset_size`` rows of each set (KID)."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(a), len(b))
    dim = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        k_xx = (x @ x.T / dim + 1) ** 3
        k_yy = (y @ y.T / dim + 1) ** 3
        k_xy = (x @ y.T / dim + 1) ** 3
        off = size * (size - 1)
        values.append(
            (k_xx.sum() - np.trace(k_xx)) / off
            + (k_yy.sum() - np.trace(k_yy)) / off
            - 2 * k_xy.mean()
        )
    return float(np.mean(values))


def fid_at_real_size(fake: np.ndarray, real: np.ndarray, size: int, seed: int) -> float:
    """Mean FID of ``fake`` against ``EQUAL_SIZE_REPEATS`` random ``size``-row subsets of
    ``real`` (against ``real`` itself when it has no more than ``size`` rows).

    FID's estimate grows as a set shrinks (its covariance comes from fewer points), so sets
    compared at one real size differ only by their fakes."""
    if len(real) <= size:
        return frechet_distance(fake, real)
    rng = np.random.default_rng(seed)
    subsets = (rng.choice(len(real), size, replace=False) for _ in range(EQUAL_SIZE_REPEATS))
    return float(np.mean([frechet_distance(fake, real[idx]) for idx in subsets]))


def nearest_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Euclidean distance ``(n,)`` (pixels in [0, 1]) from each query image to its nearest
    reference image, via ``|q|^2 - 2 q.r + |r|^2`` in float32 chunks."""
    q = torch.from_numpy(queries.reshape(len(queries), -1)).float() / 255
    r = torch.from_numpy(references.reshape(len(references), -1)).float() / 255
    r_sq = (r * r).sum(1)
    out = []
    for start in range(0, len(q), 1024):
        chunk = q[start : start + 1024]
        d2 = (chunk * chunk).sum(1, keepdim=True) - 2 * chunk @ r.T + r_sq
        out.append(d2.min(1).values.clamp_min(0).sqrt())
    return torch.cat(out).numpy()


def nearest_training_distances(queries: np.ndarray, train_images: np.ndarray) -> np.ndarray:
    """Distance to the nearest training image, as is or flipped left-right: a mirrored copy is
    still a copy, and a GAN trained with ``mirror`` sees both."""
    return nearest_distances(queries, np.concatenate([train_images, train_images[:, :, ::-1]]))


def mean_pairwise_distance(features: np.ndarray, limit: int = 500, seed: int = 0) -> float:
    """Mean Euclidean distance between the rows of ``features`` (a seeded random ``limit`` of
    them when there are more): how spread out a set is."""
    rng = np.random.default_rng(seed)
    if len(features) > limit:
        features = features[rng.choice(len(features), limit, replace=False)]
    t = torch.from_numpy(features)
    return float(torch.pdist(t).mean())
