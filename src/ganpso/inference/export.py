"""ONNX export of a classifier checkpoint, checked against PyTorch before it is kept.

The ONNX graph maps normalised crops ``(N, 1, crop, crop)`` to logits ``(N, K)`` with a dynamic
batch axis; the checkpoint's JSON header (classes, preprocessing) goes into the model's metadata
so that ``EmotionPredictor.from_pretrained("model.onnx")`` needs nothing else.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ganpso
from ganpso.checkpoint import METADATA_KEY
from ganpso.classifier.checkpoint import load_classifier
from ganpso.errors import ConfigError
from ganpso.files import atomic_write
from ganpso.inference.predictor import face_views

OPSET = 18
TOLERANCE = 1e-4


def export_onnx(checkpoint_path: Path, out: Path, check_faces: np.ndarray | None = None) -> dict:
    """Write ``out`` (.onnx) and return ``{"max_abs_diff", "faces_checked", ...}``.

    ``check_faces``: uint8 ``(N, 48, 48)`` faces on which ONNX and PyTorch logits must agree within
    ``TOLERANCE``; random faces when not given. A mismatch is an error and nothing is written.
    """
    try:
        import onnx
    except ImportError:
        raise ConfigError(
            "ONNX export needs onnx and onnxruntime: pip install 'ganpso[onnx]' -c constraints.txt"
        ) from None
    checkpoint = load_classifier(checkpoint_path, device="cpu")
    model = checkpoint.model.float().eval()
    crop = checkpoint.preprocessing.crop
    proto = trace_to_onnx(model, crop)
    header = {
        "format": "ganpso-classifier/1",
        "version": ganpso.__version__,
        "model": asdict(checkpoint.model_config),
        "classes": list(checkpoint.classes),
        "preprocessing": asdict(checkpoint.preprocessing),
        "extra": {**checkpoint.extra, "exported_from": str(checkpoint_path)},
    }
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(header)})
    onnx.checker.check_model(proto)
    if check_faces is None:
        size = checkpoint.preprocessing.image_size
        check_faces = np.random.default_rng(0).integers(0, 256, (64, size, size), dtype=np.uint8)
    report = compare_with_torch(model, proto.SerializeToString(), check_faces, checkpoint)
    if report["max_abs_diff"] > TOLERANCE:
        raise ConfigError(
            f"{out}: ONNX logits differ from PyTorch by {report['max_abs_diff']:.2e} "
            f"(> {TOLERANCE}); not written"
        )
    atomic_write(out, lambda tmp: Path(tmp).write_bytes(proto.SerializeToString()))
    return report


def trace_to_onnx(model: torch.nn.Module, crop: int) -> Any:  # -> onnx.ModelProto
    """torch.export-based ONNX export with a dynamic batch axis."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    # the exporter logs one line per torchvision op it cannot find; we use none of them
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            model,
            (torch.zeros(2, 1, crop, crop),),
            input_names=["crops"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    return program.model_proto


def compare_with_torch(
    model: torch.nn.Module, onnx_bytes: bytes, faces: np.ndarray, checkpoint: Any
) -> dict:
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    views = face_views(faces, checkpoint.preprocessing, tta=False)
    crops = views.reshape(-1, *views.shape[2:])
    onnx_logits = session.run(None, {"crops": crops})[0]
    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(crops)).numpy()
    return {
        "max_abs_diff": float(np.abs(onnx_logits - torch_logits).max()),
        "faces_checked": len(faces),
        "crops_checked": len(crops),
        "tolerance": TOLERANCE,
        "opset": OPSET,
    }
