"""One classifier training of the method: Training balanced with GAN faces, then ``fit``.

Every trained model of the pipeline (``ganpso train``, the run's stages, the rescoring and the
comparison's cells) comes from here, so a recipe's ``synthetic`` section always takes effect.

Example:
    >>> result = train_classifier(config, dataset, "runs/gan-balanced")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ganpso.classifier.config import TrainConfig
from ganpso.classifier.training import FitResult, fit
from ganpso.data import FerDataset
from ganpso.device import resolve_device
from ganpso.pipeline.balance import add_synthetic


def balanced_dataset(
    config: TrainConfig, dataset: FerDataset, log: Callable[[str], None] = print
) -> FerDataset:
    """``dataset`` with the GAN faces of ``config.synthetic`` added to Training (if any)."""
    if not config.synthetic.generator:
        return dataset
    device = resolve_device(config.device)
    training = add_synthetic(dataset["Training"], config.synthetic, device, log)
    return dataset.with_split("Training", training)


def train_classifier(
    config: TrainConfig,
    dataset: FerDataset,
    run_dir: str | Path,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> FitResult:
    """``fit`` on Training plus the recipe's GAN faces; PublicTest chooses the kept epoch."""
    balanced = balanced_dataset(config, dataset, log)
    return fit(config, balanced, run_dir, resume=resume, log=log, progress=progress)
