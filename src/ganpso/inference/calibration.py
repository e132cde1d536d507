"""Temperature scaling for a predictor: fit on PublicTest, store in the checkpoint's header.

The temperature lives in the header's ``extra`` (``temperature`` and how it was fitted), which
the ONNX export copies, so ``EmotionPredictor`` (API, CLI, web page) and an exported model give
calibrated probabilities. Fitting looks at PublicTest only; its out-of-sample effect is
estimated by 2-fold cross-fitting within PublicTest (fit on one half, measure on the other).

Example:
    >>> predictor = EmotionPredictor.from_pretrained("runs/x/best.safetensors")  # doctest: +SKIP
    >>> record = calibrate(predictor, dataset["PublicTest"])  # doctest: +SKIP
    >>> write_temperature("runs/x/best.safetensors", record)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganpso.classifier.checkpoint import load_classifier, save_classifier
from ganpso.data import Split
from ganpso.errors import CheckpointError
from ganpso.inference.predictor import EmotionPredictor
from ganpso.metrics.calibration import (
    calibration_summary,
    fit_temperature,
    scaled_probabilities,
)


def view_logits(predictor: EmotionPredictor, faces: np.ndarray) -> np.ndarray:
    """The engine's logits ``(V, N, K)`` for every view the predictor averages."""
    return np.concatenate(list(predictor.view_logits(faces)), axis=1).astype(np.float64)


def calibrate(predictor: EmotionPredictor, split: Split, seed: int = 0) -> dict[str, Any]:
    """Fit ``T`` on ``split``; before/after summaries in-sample and by 2-fold cross-fitting."""
    logits, labels = view_logits(predictor, split.images), split.labels
    temperature = fit_temperature(logits, labels)
    halves = np.array_split(np.random.default_rng(seed).permutation(len(labels)), 2)
    crossed = np.zeros((len(labels), logits.shape[-1]))
    for fit_part, held_part in (halves, halves[::-1]):
        t_half = fit_temperature(logits[:, fit_part], labels[fit_part])
        crossed[held_part] = scaled_probabilities(logits[:, held_part], t_half)
    return {
        "temperature": temperature,
        "fitted_on": "PublicTest",
        "n": len(labels),
        "tta": predictor.tta,
        "before": calibration_summary(scaled_probabilities(logits, 1.0), labels),
        "after_in_sample": calibration_summary(scaled_probabilities(logits, temperature), labels),
        "after_cross_fitted": calibration_summary(crossed, labels),
    }


def write_temperature(path: str | Path, record: dict[str, Any]) -> None:
    """Rewrite the checkpoint with ``extra.temperature`` (the weights stay bit for bit)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: calibrate a .safetensors checkpoint, then export it")
    checkpoint = load_classifier(path)
    extra = {
        **checkpoint.extra,
        "temperature": record["temperature"],
        "calibration": {key: record[key] for key in ("fitted_on", "n", "tta")}
        | {"ece_before": record["before"]["ece"], "ece_after": record["after_cross_fitted"]["ece"]},
    }
    save_classifier(
        path, checkpoint.model, checkpoint.model_config, checkpoint.classes,
        checkpoint.preprocessing, extra,
    )  # fmt: skip
