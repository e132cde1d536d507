"""The two engines a predictor can run on: PyTorch and onnxruntime, behind one call.

Both take normalised crops ``(N, 1, crop, crop)`` float32 and return logits ``(N, K)``.
An ONNX file exported by ``ganpso export`` carries the same JSON header as the safetensors
checkpoint (classes, preprocessing) in its metadata, so either file describes itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ganpso.checkpoint import METADATA_KEY
from ganpso.classifier.checkpoint import Preprocessing, load_classifier
from ganpso.classifier.fusion import fold_batch_norm
from ganpso.config import build_config
from ganpso.device import autocast, resolve_device
from ganpso.errors import CheckpointError, ConfigError

ENGINES = ("torch", "onnx")


class Engine(Protocol):
    name: str

    def __call__(self, views: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class LoadedModel:
    engine: Engine
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    path: Path
    header: dict[str, Any]


class TorchEngine:
    name = "torch"

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str) -> None:
        folded = fold_batch_norm(model).to(memory_format=torch.channels_last)
        self.model, self.device, self.precision = folded, device, precision

    @torch.inference_mode()
    def __call__(self, views: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(views).to(self.device)
        batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            return self.model(batch).float().cpu().numpy()


class OnnxEngine:
    name = "onnx"

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, views: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: views.astype(np.float32)})[0]


def load_model(path: Path, device: str = "cpu", precision: str = "fp32") -> LoadedModel:
    """A ``.safetensors`` checkpoint (or a run folder holding one) or an exported ``.onnx``."""
    if path.is_dir():
        path = path / "best.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found")
    if path.suffix == ".onnx":
        return load_onnx(path)
    checkpoint = load_classifier(path, device=resolve_device(device))
    engine = TorchEngine(checkpoint.model, resolve_device(device), precision)
    header = {"extra": checkpoint.extra}
    return LoadedModel(engine, checkpoint.classes, checkpoint.preprocessing, path, header)


def load_onnx(path: Path) -> LoadedModel:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "onnxruntime is not installed: pip install 'ganpso[onnx]' -c constraints.txt"
        ) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # onnxruntime's threads otherwise spin for a while after each run, taking the cores from
    # the face detection and decoding that come next in a photo's path
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        header = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
        classes = tuple(header["classes"])
        preprocessing = build_config(Preprocessing, header["preprocessing"], "preprocessing")
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{path}: ONNX model lacks the ganpso header ({exc})") from None
    except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a loadable ONNX model ({first[:200]})") from None
    return LoadedModel(OnnxEngine(session), classes, preprocessing, path, header)
