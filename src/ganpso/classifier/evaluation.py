"""Evaluate a saved classifier on one split and write the report files every stage reads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganpso.classifier.checkpoint import ClassifierCheckpoint
from ganpso.classifier.training import predict_proba
from ganpso.data import Split
from ganpso.device import describe_device
from ganpso.metrics import build_metrics_report, plot_confusion_matrix, write_json


def evaluate_checkpoint(
    checkpoint: ClassifierCheckpoint,
    split: Split,
    split_name: str,
    *,
    device: torch.device,
    tta: bool = True,
    precision: str = "auto",
    command: str = "",
    seed: int = 0,
) -> dict[str, Any]:
    """The ``metrics.json`` report of ``checkpoint`` on ``split`` (bootstrap CIs seeded)."""
    started = time.perf_counter()
    probs = predict_proba(
        checkpoint.model,
        split.images,
        crop=checkpoint.preprocessing.crop,
        tta=tta,
        device=device,
        precision=precision,
        channels_last=True,
    )
    return build_metrics_report(
        split.labels,
        probs.argmax(1),
        split=split_name,
        classes=checkpoint.classes,
        device=describe_device(device),
        seconds=time.perf_counter() - started,
        command=command,
        seed=seed,
    )


def metrics_file(split: str) -> str:
    """The name of a model folder's evaluation on ``split``."""
    return f"metrics-{split}.json"


def predictions_file(split: str) -> str:
    """The name of a model folder's predictions on ``split``, which paired tests read."""
    return f"predictions-{split}.npz"


def write_predictions(
    folder: Path,
    y_true: Any,
    y_pred: Any,
    probs: np.ndarray | None = None,
    split: str = "PrivateTest",
) -> Path:
    """Save int64 ``y_true`` and ``y_pred`` in image order, and float32 ``probs`` ``(N, K)``."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"y_true": np.asarray(y_true, np.int64), "y_pred": np.asarray(y_pred, np.int64)}
    if probs is not None:
        arrays["probs"] = np.asarray(probs, np.float32)
    path = folder / predictions_file(split)
    np.savez_compressed(path, **arrays)
    return path


def write_evaluation(report: dict[str, Any], out_dir: Path) -> Path:
    """Write ``metrics-<split>.json`` and ``confusion-<split>.png``; returns the JSON path."""
    split = report["split"]
    path = out_dir / metrics_file(split)
    write_json(report, path)
    plot_confusion_matrix(
        report["confusion_matrix"],
        report["classes"],
        out_dir / f"confusion-{split}.png",
        title=f"{split} (n={report['n']}, accuracy {report['accuracy']:.4f})",
    )
    return path
