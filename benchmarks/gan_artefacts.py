"""The artefact measure for a saved generator alone, without the rest of ``gan evaluate``.

Draws ``--per-class`` fakes per class and scores their high-frequency power against as many real
Training faces (``ganpso.gan.evaluation.artefact_scores``); a second real draw scored the same
way (disjoint from the first) is the reference a perfect generator would reach. Writes JSON.

    python benchmarks/gan_artefacts.py --generator results/gan/generator.safetensors \
        --out results/gan/artefacts.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ganpso.data import load_dataset
from ganpso.data.config import DataConfig
from ganpso.device import describe_device
from ganpso.gan.checkpoint import load_generator
from ganpso.gan.evaluation import artefact_scores, class_subset, draw_fakes
from ganpso.gan.feature_scores import CLASSES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path, default=Path("results/gan/generator.safetensors"))
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/gan/artefacts.json"))
    args = parser.parse_args()

    started = time.perf_counter()
    device = torch.device("cpu")
    generator, header = load_generator(args.generator, device)
    train = load_dataset(DataConfig(source=args.data))["Training"]
    fakes = draw_fakes(generator, args.per_class, args.seed)
    # two disjoint real sets per class (disgust has 436 Training faces: at most 218 each)
    draws = {k: class_subset(train, k, 2 * args.per_class, args.seed) for k in CLASSES}
    real = {k: faces[: args.per_class] for k, faces in draws.items()}
    other = {k: faces[args.per_class :] for k, faces in draws.items()}
    result = {
        "generator": str(args.generator),
        "generator_step": header.get("step"),
        "per_class": args.per_class,
        "fakes": artefact_scores(fakes, real),
        "real_reference": artefact_scores(other, real),
        "target": "fakes' high_frequency_ratio within 1.2x of the real faces' (issue 22)",
        "device": describe_device(device),
        "seconds": round(time.perf_counter() - started, 1),
        "command": "python " + " ".join(sys.argv),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("fakes", "real_reference")}, indent=1))


if __name__ == "__main__":
    main()
