"""Score a predictor on labelled faces: a FER2013 split, or a user's own data set taken whole.

Each image is one face, taken whole (already cropped, resized to 48x48 by the data loader): no
detection runs, so a score reflects the classifier alone. Macro measures average over the
classes that have images (a user's folder often lacks some), and the report names them.

Example:
    >>> predictor = EmotionPredictor.from_pretrained()  # doctest: +SKIP
    >>> report, probs = score_faces(predictor, faces, "all", source="my-faces/")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ganpso.data import Split
from ganpso.emotions import EMOTIONS
from ganpso.errors import DataError
from ganpso.inference.predictor import EmotionPredictor
from ganpso.metrics import build_metrics_report

FACES_TAKEN_WHOLE = "taken whole: each image is one face, resized to 48x48; no detection"


def score_faces(
    predictor: EmotionPredictor,
    faces: Split,
    split_name: str,
    *,
    source: str,
    split_note: str = "",
    command: str = "",
    device: str = "cpu",
    seed: int = 0,
) -> tuple[dict[str, Any], np.ndarray]:
    """The ``metrics.json`` report of ``predictor`` on ``faces`` (bootstrap CIs seeded) and the
    ``(N, K)`` probabilities it was computed from."""
    if tuple(predictor.classes) != EMOTIONS:
        raise DataError(
            f"{predictor.model_path}: the model's classes {list(predictor.classes)} are not the "
            f"data's {list(EMOTIONS)}"
        )
    if len(faces) == 0:
        raise DataError(f"{source}: no images in the {split_name} split")
    started = time.perf_counter()
    probs = predictor.predict_faces(faces.images)
    report = build_metrics_report(
        faces.labels,
        probs.argmax(1),
        split=split_name,
        classes=predictor.classes,
        device=device,
        seconds=time.perf_counter() - started,
        command=command,
        seed=seed,
        present_only=True,
    )
    described = {
        **report,
        "source": source,
        "model": str(predictor.model_path),
        "split_note": split_note,
        "faces": FACES_TAKEN_WHOLE,
        "tta": predictor.tta,
    }
    return described, probs
