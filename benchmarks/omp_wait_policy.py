"""Does PyTorch's OpenMP spin-waiting slow the photo pipeline, and what would stopping it cost?

After a parallel region, OpenMP worker threads spin for a while before they sleep (libgomp's
default). In ``predict_image`` the classifier's threads then compete with face detection (OpenCV's
own threads) for the 2 cores. ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` must be set before the
OpenMP runtime loads, so each setting runs in a fresh child process with that environment. Each
child measures, on the PyTorch engine at the machine's fast precision: one photo's p50 and its
split (decode, detection, classification) as PNG and JPEG, face crops/s at batch 256, and
training images/s (``bench_train``'s real step with the default recipe, batch 128, bf16 +
channels_last where native).
Writes ``results/benchmarks/omp-wait-policy-<machine kind>.json``.

    python benchmarks/omp_wait_policy.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench_inference import (
    JPEG_QUALITY,
    astronaut_bytes,
    astronaut_png,
    latency,
    latency_split,
    throughput,
)
from bench_train import images_per_s, training_step
from ganpso.classifier.config import TrainConfig
from ganpso.device import resolve_precision
from ganpso.inference import EmotionPredictor, default_model_path
from machine import machine_facts, machine_kind

SETTINGS = {  # name: environment added to the child's
    "default (libgomp spins)": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
}
REPEATS = 60
TRAIN_STEPS = 15


def measure() -> dict:
    """One child's figures (its environment, read when torch loaded OpenMP, already set)."""
    precision = resolve_precision("auto", torch.device("cpu"))
    predictor = EmotionPredictor.from_pretrained(default_model_path(), precision=precision)
    faces = np.random.default_rng(0).integers(0, 256, (2048, 48, 48), dtype=np.uint8)
    photos = {"png": astronaut_png(), "jpeg": astronaut_bytes("JPEG", quality=JPEG_QUALITY)}
    row: dict = {"precision": precision}
    for name, photo in photos.items():
        row[f"photo_{name}"] = latency(predictor.predict_image, photo, REPEATS)
        row[f"photo_{name}_split"] = latency_split(predictor, photo, REPEATS)
    row["faces_per_s"] = round(throughput(predictor.predict_faces, faces), 1)
    mode = "bf16+channels_last" if precision == "bf16" else "fp32+channels_last"
    config = TrainConfig.from_yaml(Path("configs/default.yaml"))
    step = training_step(config, mode, 128, torch.device("cpu"))
    row["train_images_per_s"] = round(images_per_s(step, 128, TRAIN_STEPS)[0], 1)
    row["train_mode"] = mode
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure()))
        return

    rows = {}
    for name, extra in SETTINGS.items():
        child = subprocess.run(
            [sys.executable, __file__, "--child"],
            env=os.environ | extra,
            capture_output=True,
            text=True,
            check=True,
        )
        rows[name] = json.loads(child.stdout.strip().splitlines()[-1])
        print(name, rows[name], flush=True)
    result = {
        "benchmark": "OpenMP wait policy: photo latency, face throughput and training speed",
        "rows": rows,
        "machine": machine_facts(),
        "command": "python " + " ".join(sys.argv),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = args.out or Path(f"results/benchmarks/omp-wait-policy-{machine_kind()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
