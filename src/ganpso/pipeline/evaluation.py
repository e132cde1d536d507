"""A trained model's evaluations: its PublicTest report, and the one PrivateTest evaluation.

PublicTest chose the model's epoch and may be scored again at will. PrivateTest is scored once
per model folder, with the recipe's own views and precision: the metrics report, the confusion
plot and the predictions file that the comparison's paired tests read.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ganpso.classifier.checkpoint import load_classifier
from ganpso.classifier.config import TrainConfig
from ganpso.classifier.evaluation import evaluate_checkpoint, write_evaluation, write_predictions
from ganpso.classifier.training import predict_proba
from ganpso.data import FerDataset
from ganpso.device import describe_device, resolve_device
from ganpso.errors import ConfigError
from ganpso.metrics import build_metrics_report
from ganpso.pipeline.folders import CONFIG_FILE, PRIVATE_METRICS_FILE

CHECKPOINT_FILE = "best.safetensors"


def evaluate_public(
    config: TrainConfig, model_dir: Path, dataset: FerDataset, command: str
) -> dict[str, Any]:
    """The PublicTest report of the classifier trained in ``model_dir``, with the recipe's views,
    written beside it and returned."""
    device = resolve_device(config.device)
    report = evaluate_checkpoint(
        load_classifier(model_dir / CHECKPOINT_FILE, device),
        dataset["PublicTest"],
        "PublicTest",
        device=device,
        tta=config.tta,
        precision=config.precision,
        command=command,
        seed=config.seed,
    )
    write_evaluation(report, model_dir)
    return report


def evaluate_private(model_dir: Path, dataset: FerDataset, command: str) -> dict[str, Any]:
    """The one PrivateTest evaluation of ``model_dir``: metrics, confusion plot, predictions."""
    if (model_dir / PRIVATE_METRICS_FILE).exists():
        raise ConfigError(f"{model_dir}: PrivateTest was already evaluated; it is touched once")
    config = TrainConfig.from_yaml(model_dir / CONFIG_FILE)
    device = resolve_device(config.device)
    checkpoint = load_classifier(model_dir / CHECKPOINT_FILE, device)
    private = dataset["PrivateTest"]
    started = time.perf_counter()
    probs = predict_proba(  # (N, K)
        checkpoint.model,
        private.images,
        crop=checkpoint.preprocessing.crop,
        tta=config.tta,
        device=device,
        precision=config.precision,
    )
    seconds = time.perf_counter() - started
    predictions = probs.argmax(1)
    report = build_metrics_report(
        private.labels,
        predictions,
        split="PrivateTest",
        classes=checkpoint.classes,
        device=describe_device(device),
        seconds=seconds,
        command=command,
        seed=config.seed,
    )
    write_predictions(model_dir, private.labels, predictions, probs)
    write_evaluation(report, model_dir)
    return report
