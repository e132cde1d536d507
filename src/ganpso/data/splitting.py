"""A seeded stratified split for sources that carry no official one."""

from __future__ import annotations

import numpy as np

from ganpso.emotions import SPLITS


def stratified_split(
    labels: np.ndarray, seed: int, val_fraction: float, test_fraction: float
) -> np.ndarray:
    """Split name per sample: within each class, ``test_fraction`` -> PrivateTest,
    ``val_fraction`` -> PublicTest, the rest Training. A class of >= 3 images has at least
    one image in each split."""
    rng = np.random.default_rng(seed)
    assignment = np.full(len(labels), SPLITS[0], dtype=object)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(test_fraction * len(members))
        n_val = round(val_fraction * len(members))
        if len(members) >= 3:
            n_test, n_val = (
                max(n_test, 1 if test_fraction > 0 else 0),
                max(n_val, 1 if val_fraction > 0 else 0),
            )
        assignment[members[:n_test]] = SPLITS[2]
        assignment[members[n_test : n_test + n_val]] = SPLITS[1]
    return assignment
