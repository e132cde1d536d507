"""Do more test-time views lift a checkpoint? PublicTest scores under several sets of crops.

The classifier evaluates the mean of 10 views (the centre and four corner 40x40 crops of a
48x48 face, each with its mirror; ``ganpso.classifier.augment.eval_views``). This measures, per
checkpoint, the centre alone, those 10, and denser grids of crop offsets, each with its mirror,
with the product's own path (``predict_proba``: BatchNorm folded, channels_last, bf16 where it
is faster than fp32). PublicTest only: it can choose a view set, PrivateTest must not.

    python benchmarks/tta_views.py src/ganpso/inference/weights/fer2013-vgg_small.safetensors \
        runs/cells-epyc/weight-decay-5e-5-s0/best.safetensors --out results/recipe/tta-views.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from ganpso.classifier.checkpoint import load_classifier
from ganpso.classifier.config import DataConfig
from ganpso.classifier.training import predict_proba
from ganpso.data.dataset import Split
from ganpso.data.loading import load_dataset
from ganpso.device import resolve_device
from machine import machine_facts, machine_kind


def grid(steps: int, margin: int) -> list[tuple[int, int]]:
    """``steps`` x ``steps`` crop offsets spread evenly over ``margin`` pixels each way."""
    positions = np.linspace(0, margin, steps).round().astype(int).tolist()
    return [(top, left) for top in positions for left in positions]


def view_sets(margin: int) -> dict[str, list[tuple[int, int]]]:
    """Named sets of crop offsets; every offset is also evaluated mirrored."""
    centre = (margin // 2, margin // 2)
    corners = [(0, 0), (0, margin), (margin, 0), (margin, margin)]
    return {
        "centre": [centre],
        "centre and corners (the default)": [centre, *corners],
        "3x3 grid": grid(3, margin),
        "5x5 grid": grid(5, margin),
    }


def score_checkpoint(path: Path, public: Split, device: torch.device) -> list[dict[str, object]]:
    checkpoint = load_classifier(path, device)
    crop = checkpoint.preprocessing.crop
    rows = []
    for name, offsets in view_sets(public.images.shape[-1] - crop).items():
        started = time.perf_counter()
        probs = predict_proba(
            checkpoint.model, public.images, crop=crop, tta=True, device=device, offsets=offsets
        )
        predicted = probs.argmax(1)
        rows.append(
            {
                "views": name,
                "n_views": 2 * len(offsets),
                "accuracy": round(float((predicted == public.labels).mean()), 4),
                "macro_f1": round(float(f1_score(public.labels, predicted, average="macro")), 4),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(f"{path}: {name}: {rows[-1]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fer2013.zip"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path(f"tta-views-{machine_kind()}.json"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    public = load_dataset(DataConfig(source=str(args.data)))["PublicTest"]
    result = {
        "experiment": "PublicTest scores of each checkpoint under sets of test-time views",
        "split": "PublicTest",
        "checkpoints": {
            str(path): score_checkpoint(path, public, device) for path in args.checkpoints
        },
        "machine": machine_facts(),
        "command": " ".join(["python", *sys.argv]),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
