"""Self-describing classifier checkpoints in the ganpso format (``ganpso.checkpoint``).

The header holds the model config, class names and preprocessing, so one file is enough to
rebuild and run the model; loading never unpickles anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ganpso.checkpoint import check_shapes, read_header, write_checkpoint
from ganpso.classifier.augment import PIXEL_MEAN, PIXEL_STD
from ganpso.classifier.config import ModelConfig
from ganpso.classifier.models import build_model
from ganpso.config import bounded, build_config
from ganpso.emotions import IMAGE_SIZE
from ganpso.errors import CheckpointError, ConfigError

FORMAT = "ganpso-classifier/1"
MAX_CLASSES = 1000


@dataclass(frozen=True)
class Preprocessing:
    """How raw faces become model input; inference must apply exactly this."""

    image_size: int = bounded(IMAGE_SIZE, ge=16, le=512)  # faces resized to this square, grayscale
    crop: int = bounded(40, ge=8, le=512)  # the model sees centre/corner crops of this side
    pixel_mean: float = bounded(PIXEL_MEAN, ge=0, le=1)
    pixel_std: float = bounded(PIXEL_STD, gt=0, le=1)

    def check(self, where: str) -> None:
        if self.crop > self.image_size:
            raise ConfigError(
                f"{where}.crop: {self.crop} is larger than image_size {self.image_size}"
            )


@dataclass(frozen=True)
class ClassifierCheckpoint:
    """A loaded checkpoint: the model in eval mode and what describes it."""

    model: nn.Module
    model_config: ModelConfig
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    extra: dict[str, Any]


def save_classifier(
    path: str | Path,
    model: nn.Module,
    model_config: ModelConfig,
    classes: tuple[str, ...],
    preprocessing: Preprocessing,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model``'s weights and description to ``path`` (``.safetensors``) atomically."""
    header = {
        "model": asdict(model_config),
        "classes": list(classes),
        "preprocessing": asdict(preprocessing),
        "extra": extra or {},
    }
    write_checkpoint(Path(path), model.state_dict(), FORMAT, header)


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> ClassifierCheckpoint:
    """Rebuild the model from a checkpoint; any problem is a one-line ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    header = read_header(path, FORMAT)
    try:
        model_config = build_config(ModelConfig, header["model"], "model")
        classes = tuple(header["classes"])
        if not 2 <= len(classes) <= MAX_CLASSES:
            raise ConfigError(f"classes: {len(classes)} of them; expected 2 to {MAX_CLASSES}")
        preprocessing = build_config(Preprocessing, header["preprocessing"], "preprocessing")
        with torch.device("meta"):  # shapes only: no memory until they match the file
            check_shapes(path, build_model(model_config, num_classes=len(classes)))
        model = build_model(model_config, num_classes=len(classes))
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(
            f"{path}: checkpoint header is incomplete or invalid ({exc})"
        ) from None
    try:
        state = load_file(path, device=str(device))
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: weights do not match the described model ({first})"
        ) from None
    model.to(device).eval()
    return ClassifierCheckpoint(
        model, model_config, classes, preprocessing, header.get("extra", {})
    )
