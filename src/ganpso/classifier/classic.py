"""The classic pre-deep baseline: HOG (+ uniform LBP histograms), standardised, linear SVM.

Features of a 48x48 face, with the defaults:

- HOG: 9 orientations, 8x8-pixel cells (6x6 cells), 2x2-cell blocks with L2-Hys normalisation
  (5x5 blocks) -> 5 * 5 * 4 * 9 = 900 values;
- LBP (``hog+lbp`` only): uniform codes with 8 neighbours at radius 1 (10 distinct codes), one
  normalised histogram per 8x8 cell -> 36 * 10 = 360 values.

A ``LinearSVC`` (one-vs-rest, squared hinge, primal solver) is fitted on Training for each C of a
small grid; the C kept is the best on PublicTest. PrivateTest is never an input.
On 6,000 Training images (2 loaded CPU cores) ``LinearSVC`` took 8-24 s per C in 1e-4..1e-2 and
reached 0.46 PublicTest accuracy; ``SGDClassifier(loss="hinge")`` took 3-5 s but topped at 0.42,
so the exact solver is used: about 5x those times on the full 28,709 images.

Example:
    >>> model = fit_classic(dataset["Training"], dataset["PublicTest"], ClassicConfig())
    ... # doctest: +SKIP
    >>> model.predict(dataset["PublicTest"].images).shape  # doctest: +SKIP
    (3589,)
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from skimage.feature import hog, local_binary_pattern
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from ganpso.data import Split
from ganpso.emotions import NUM_CLASSES
from ganpso.errors import ConfigError
from ganpso.metrics import classification_metrics

FEATURES: tuple[str, ...] = ("hog", "hog+lbp")


@dataclass(frozen=True)
class ClassicConfig:
    """Feature set, the C grid searched on PublicTest, and the solver's seed."""

    features: Literal["hog", "hog+lbp"] = "hog+lbp"
    c_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    seed: int = 0
    selection_metric: Literal["accuracy", "macro_f1"] = "accuracy"
    class_weight: Literal["balanced"] | None = None  # "balanced" trades accuracy for macro-F1
    cell: int = 8  # pixels per cell side, for HOG and the LBP histograms
    orientations: int = 9
    lbp_points: int = 8
    lbp_radius: float = 1.0
    max_iter: int = 2000

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ConfigError(f"features {self.features!r}: expected one of {list(FEATURES)}")
        if not self.c_grid or any(c <= 0 for c in self.c_grid):
            raise ConfigError(f"c_grid {self.c_grid!r}: expected one or more positive values")
        if self.selection_metric not in ("accuracy", "macro_f1"):
            raise ConfigError(f"selection_metric {self.selection_metric!r}: accuracy or macro_f1")


def hog_features(images: np.ndarray, cell: int = 8, orientations: int = 9) -> np.ndarray:
    """HOG descriptors ``(N, D)`` float32 of uint8 faces ``(N, H, W)`` (900 values at 48x48)."""
    rows = [
        hog(
            image,
            orientations=orientations,
            pixels_per_cell=(cell, cell),
            cells_per_block=(2, 2),
            block_norm="L2-Hys",
            feature_vector=True,
        )
        for image in images
    ]
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


def lbp_histograms(
    images: np.ndarray, cell: int = 8, points: int = 8, radius: float = 1.0
) -> np.ndarray:
    """Per-cell histograms of uniform LBP codes ``(N, cells * (points + 2))``, each summing to 1."""
    n, height, width = images.shape
    bins = points + 2  # uniform patterns: points + 1 of them, plus one bin for the rest
    codes = np.stack([local_binary_pattern(im, points, radius, method="uniform") for im in images])
    grid_h, grid_w = height // cell, width // cell
    codes = codes[:, : grid_h * cell, : grid_w * cell].astype(np.int64)
    # (N, gh, cell, gw, cell) -> (N, gh * gw, cell * cell): the pixels of each cell in a row
    cells = codes.reshape(n, grid_h, cell, grid_w, cell).transpose(0, 1, 3, 2, 4)
    cells = cells.reshape(n, grid_h * grid_w, cell * cell)
    # one bincount for all cells of all images: cell k of image i owns bins [(i*C + k) * bins, ...)
    offsets = np.arange(n * grid_h * grid_w).reshape(n, grid_h * grid_w, 1) * bins
    counts = np.bincount((offsets + cells).ravel(), minlength=n * grid_h * grid_w * bins)
    return (counts.reshape(n, -1) / (cell * cell)).astype(np.float32)


def extract_features(images: np.ndarray, config: ClassicConfig) -> np.ndarray:
    """The feature matrix ``(N, D)`` float32 that ``config.features`` names."""
    images = np.asarray(images, dtype=np.uint8)
    parts = [hog_features(images, config.cell, config.orientations)]
    if config.features == "hog+lbp":
        parts.append(lbp_histograms(images, config.cell, config.lbp_points, config.lbp_radius))
    return np.hstack(parts)


@dataclass
class ClassicModel:
    """A fitted baseline: scaler, SVM, the C kept and the PublicTest score of every C tried."""

    config: ClassicConfig
    scaler: StandardScaler
    svm: LinearSVC
    c: float
    val_scores: dict[float, float] = field(default_factory=dict)
    converged: dict[float, bool] = field(default_factory=dict)
    seconds: float = 0.0

    def scores(self, images: np.ndarray) -> np.ndarray:
        """One-vs-rest SVM margins ``(N, 7)``; the predicted label is their argmax."""
        features = self.scaler.transform(extract_features(images, self.config))
        margins = self.svm.decision_function(features)
        return _expand_classes(margins, self.svm.classes_)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Labels ``(N,)`` int64 of uint8 faces ``(N, 48, 48)``."""
        return self.scores(images).argmax(axis=1).astype(np.int64)


def _expand_classes(margins: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``(N, k)`` margins over the classes seen in training -> ``(N, 7)`` (unseen: -inf)."""
    margins = margins.reshape(len(margins), -1)
    if len(classes) == 2:  # binary SVMs give one margin, positive for classes[1]
        margins = np.hstack([-margins, margins])
    out = np.full((len(margins), NUM_CLASSES), -np.inf)
    out[:, classes] = margins
    return out


def _fit_svm(
    features: np.ndarray, labels: np.ndarray, c: float, config: ClassicConfig
) -> tuple[LinearSVC, bool]:
    svm = LinearSVC(
        C=c,
        dual="auto",
        max_iter=config.max_iter,
        class_weight=config.class_weight,
        random_state=config.seed,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        svm.fit(features, labels)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return svm, converged


def _score(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> float:
    scores = classification_metrics(y_true, y_pred)
    return scores["accuracy"] if metric == "accuracy" else scores["macro"]["f1"]


def fit_classic(train: Split, val: Split, config: ClassicConfig) -> ClassicModel:
    """Fit on ``train`` for each C of ``config.c_grid``; keep the best on ``val`` (PublicTest).

    Ties keep the smaller C (the stronger regularisation).
    """
    started = time.perf_counter()
    train_x = extract_features(train.images, config)  # (N, 900) or (N, 1260) at 48x48
    scaler = StandardScaler().fit(train_x)
    train_x = scaler.transform(train_x)
    val_x = scaler.transform(extract_features(val.images, config))
    best: ClassicModel | None = None
    val_scores: dict[float, float] = {}
    converged: dict[float, bool] = {}
    for c in sorted(config.c_grid):
        svm, converged[c] = _fit_svm(train_x, train.labels, c, config)
        predicted = _expand_classes(svm.decision_function(val_x), svm.classes_).argmax(axis=1)
        val_scores[c] = _score(val.labels, predicted, config.selection_metric)
        if best is None or val_scores[c] > val_scores[best.c]:
            best = ClassicModel(config, scaler, svm, c)
    assert best is not None  # c_grid is never empty (checked by ClassicConfig)
    best.val_scores, best.converged = val_scores, converged
    best.seconds = time.perf_counter() - started
    return best
