"""Static int8 quantisation of an ONNX export, calibrated on Training faces.

onnxruntime's ``quantize_static`` turns the fp32 graph into int8 convolutions (per-channel weight
scales, activation ranges from calibration batches). The first convolution (its input is the
one-channel face, whose int8 range is coarse) and the final linear layer stay in fp32, as is
usual: together under 1 % of the FLOPs, and quantising them cost most of the accuracy
(``results/benchmarks/inference-*.json``). On CPUs with AVX-512 VNNI or AMX its
integer kernels run several times the fp32 speed. The calibration faces come from Training, as
every fitted quantity does; the check runs on PublicTest faces, and an int8 model whose accuracy
falls more than ``MAX_ACCURACY_LOSS`` below the fp32 export's is refused, nothing written.

Example::

    from ganpso.inference.quantize import quantize_export

    report = quantize_export(Path("model.onnx"), Path("model-int8.onnx"),
                             calibration=training_faces, check=(public_faces, public_labels))
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.checkpoint import METADATA_KEY
from ganpso.errors import ConfigError
from ganpso.files import atomic_write
from ganpso.inference.predictor import face_views
from ganpso.inference.runtime import load_onnx

MAX_ACCURACY_LOSS = 0.002  # a fraction: 0.2 accuracy points
CALIBRATION_BATCH = 128
CALIBRATION_FACES = 1024


def quantize_export(
    fp32_path: Path,
    out: Path,
    calibration: np.ndarray,
    check: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Write the int8 model of ``fp32_path`` to ``out``; returns both accuracies on ``check``.

    ``calibration``: uint8 Training faces ``(N, S, S)``; ``check``: labelled faces and labels.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32 = load_onnx(fp32_path)
    with tempfile.TemporaryDirectory() as folder:
        prepared, quantized = Path(folder) / "prepared.onnx", Path(folder) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(
            str(prepared),
            str(quantized),
            CalibrationBatches(calibration, fp32.preprocessing),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=kept_in_fp32(prepared),
        )
        proto = with_header(quantized, fp32.header, len(calibration))
        candidate = Path(folder) / "checked.onnx"
        candidate.write_bytes(proto.SerializeToString())
        faces, labels = check
        report = {
            "fp32_accuracy": accuracy(fp32_path, faces, labels),
            "int8_accuracy": accuracy(candidate, faces, labels),
            "faces_checked": len(faces),
            "calibration_faces": len(calibration),
            "max_accuracy_loss": MAX_ACCURACY_LOSS,
        }
        loss = report["fp32_accuracy"] - report["int8_accuracy"]
        if loss > MAX_ACCURACY_LOSS:
            raise ConfigError(
                f"{out}: int8 accuracy {report['int8_accuracy']:.4f} is {100 * loss:.2f} points "
                f"below fp32's {report['fp32_accuracy']:.4f} on {len(faces)} check faces "
                f"(allowed {100 * MAX_ACCURACY_LOSS:.1f}); not written"
            )
        atomic_write(out, lambda tmp: Path(tmp).write_bytes(proto.SerializeToString()))
    return report


def kept_in_fp32(path: Path) -> list[str]:
    """Names of the graph's first convolution and its linear layers (nodes are in order)."""
    import onnx

    nodes = onnx.load(str(path)).graph.node
    convolutions = [node.name for node in nodes if node.op_type == "Conv"]
    linear = [node.name for node in nodes if node.op_type in ("Gemm", "MatMul")]
    return convolutions[:1] + linear


class CalibrationBatches:
    """onnxruntime's calibration reader: the predictor's own views of the Training faces."""

    def __init__(self, faces: np.ndarray, preprocessing: Any) -> None:
        starts = range(0, len(faces), CALIBRATION_BATCH)
        self.batches: Iterator[dict[str, np.ndarray]] = (
            {"crops": flat_views(faces[start : start + CALIBRATION_BATCH], preprocessing)}
            for start in starts
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


def flat_views(faces: np.ndarray, preprocessing: Any) -> np.ndarray:
    views = face_views(faces, preprocessing, tta=False)
    return views.reshape(-1, *views.shape[2:])


def with_header(path: Path, header: dict[str, Any], calibration_faces: int) -> Any:
    """The quantised graph with the fp32 export's header, marked as int8."""
    import onnx

    proto = onnx.load(str(path))
    extra = {**header.get("extra", {}), "quantization": {
        "method": "onnxruntime static, QDQ, per-channel int8 weights, uint8 activations; "
        "first convolution and linear layer in fp32",
        "calibration_faces": calibration_faces,
    }}  # fmt: skip
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps({**header, "extra": extra})})
    return proto


def accuracy(path: Path, faces: np.ndarray, labels: np.ndarray) -> float:
    from ganpso.inference.predictor import EmotionPredictor

    predicted = EmotionPredictor.from_pretrained(path).predict_faces(faces).argmax(1)
    return round(float((predicted == labels).mean()), 4)
