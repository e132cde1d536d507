"""CAS (classification accuracy score, Ravuri & Vinyals 2019): a classifier trained on fakes only.

The default classifier recipe (width 16) is trained on a set of images and scored on
PublicTest; trained on fakes it says how much of each emotion the generator draws, and trained
on as many real Training images it gives the reference that the fakes are held against. By
default the synthetic set is as large as Training (its size over 7 per class).

Example:
    >>> score = classification_accuracy_score(images, labels, public, epochs=12, device="cpu")
    >>> score["accuracy"], score["per_class_recall"]["disgust"]  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.classifier import fit, predict_proba
from ganpso.classifier.checkpoint import load_classifier
from ganpso.classifier.config import ModelConfig, TrainConfig
from ganpso.data import FerDataset, Split
from ganpso.device import resolve_device
from ganpso.emotions import EMOTIONS
from ganpso.metrics import classification_metrics


def classification_accuracy_score(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    public: Split,
    epochs: int,
    device: str,
    seed: int = 0,
) -> dict[str, Any]:
    """Train the default recipe (width 16) on the given images; score on PublicTest.

    The kept epoch is chosen on PublicTest, which flatters the score slightly; the last epoch's
    accuracy (no choice made) is reported beside it. Both CAS and its real-data reference are
    measured the same way.
    """
    config = TrainConfig(
        model=ModelConfig(width=16),
        epochs=epochs,
        device=device,
        seed=seed,
        tta=False,
        selection_metric="accuracy",
    )
    dataset = FerDataset(
        {"Training": Split(train_images, train_labels), "PublicTest": public}, "cas"
    )
    with tempfile.TemporaryDirectory() as folder:
        result = fit(config, dataset, Path(folder) / "cas", log=lambda _: None)
        best = load_classifier(Path(folder) / "cas" / "best.safetensors")
    probs = predict_proba(
        best.model,
        public.images,
        crop=config.augment.crop,
        tta=False,
        device=resolve_device(device),
        precision=config.precision,
    )
    report = classification_metrics(public.labels, probs.argmax(1))
    return {
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(report["macro"]["f1"], 4),
        "accuracy_last_epoch": round(result.history[-1]["val/accuracy"], 4),
        "best_epoch": result.best_epoch,
        "per_class_recall": {
            name: round(row["recall"], 4) for name, row in report["per_class"].items()
        },
        "train_images": len(train_labels),
        "train_images_per_class": np.bincount(train_labels, minlength=len(EMOTIONS)).tolist(),
        "epochs": epochs,
    }


def mean_over_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """CAS runs that differ only by the classifier's seed: means, the spread, each seed's value.

    One CAS training moves with its seed (per-class recall by far more), so a single run can
    fall on either side of a threshold; the mean is what gets judged.
    """
    if len(runs) == 1:
        return runs[0]
    accuracy = [run["accuracy"] for run in runs]
    recall = {
        name: round(float(np.mean([run["per_class_recall"][name] for run in runs])), 4)
        for name in runs[0]["per_class_recall"]
    }
    return {
        **runs[0],
        "accuracy": round(float(np.mean(accuracy)), 4),
        "accuracy_std": round(float(np.std(accuracy, ddof=1)), 4),
        "accuracy_per_seed": accuracy,
        "macro_f1": round(float(np.mean([run["macro_f1"] for run in runs])), 4),
        "accuracy_last_epoch": round(
            float(np.mean([run["accuracy_last_epoch"] for run in runs])), 4
        ),
        "best_epoch": [run["best_epoch"] for run in runs],
        "per_class_recall": recall,
        "seeds": len(runs),
    }
