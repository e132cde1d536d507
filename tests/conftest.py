"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganpso.classifier import Preprocessing, build_model, save_classifier
from ganpso.classifier.config import ModelConfig
from ganpso.emotions import EMOTIONS


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A width-4 ``vgg_small`` with seeded random weights: fast, deterministic, not trained."""
    torch.manual_seed(0)
    config = ModelConfig(name="vgg_small", width=4, dropout=0.0)
    model = build_model(config, num_classes=len(EMOTIONS)).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_classifier(path, model, config, EMOTIONS, Preprocessing())
    return path
