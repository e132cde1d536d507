"""Self-describing classifier checkpoints: safetensors weights with a JSON header.

The JSON (model config, class names, preprocessing, package version) lives in the safetensors
metadata, so one file is enough to rebuild and run the model; loading never unpickles anything.
Files are written to a temporary name and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

import ganpso
from ganpso.classifier.augment import PIXEL_MEAN, PIXEL_STD
from ganpso.classifier.models import build_model
from ganpso.config import ModelConfig
from ganpso.emotions import IMAGE_SIZE
from ganpso.errors import CheckpointError, ConfigError
from ganpso.files import atomic_write

METADATA_KEY = "ganpso"
FORMAT = "ganpso-classifier/1"


@dataclass(frozen=True)
class Preprocessing:
    """How raw faces become model input; inference must apply exactly this."""

    image_size: int = IMAGE_SIZE  # faces are resized to this square, grayscale
    crop: int = 40  # the model sees centre/corner crops of this side
    pixel_mean: float = PIXEL_MEAN
    pixel_std: float = PIXEL_STD


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
        "format": FORMAT,
        "version": ganpso.__version__,
        "model": asdict(model_config),
        "classes": list(classes),
        "preprocessing": asdict(preprocessing),
        "extra": extra or {},
    }
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    atomic_write(
        Path(path), lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(header)})
    )


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> ClassifierCheckpoint:
    """Rebuild the model from a checkpoint; any problem is a one-line ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    header = read_header(path)
    try:
        model_config = ModelConfig(**header["model"])
        classes = tuple(header["classes"])
        preprocessing = Preprocessing(**header["preprocessing"])
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


def read_header(path: Path, expected: str = FORMAT) -> dict[str, Any]:
    """The JSON header of a ganpso safetensors file, checked for its format tag."""
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size < 100_000_000:
                raise ValueError("bad header size")
            raw = json.loads(handle.read(size))
        header = json.loads(raw["__metadata__"][METADATA_KEY])
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(
            f"{path}: not a ganpso safetensors checkpoint (unreadable header)"
        ) from None
    if header.get("format") != expected:
        raise CheckpointError(f"{path}: expected a {expected} file, found {header.get('format')!r}")
    return header
