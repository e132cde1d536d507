"""Do more fakes, or only the confident ones, teach a classifier more? CAS at sampling time.

One generator, judged by CAS (a classifier trained on fakes only, scored on PublicTest) with
its fakes drawn in different ways: ``--count`` fakes per class (with the same recipe on as many
real Training faces per class beside each, disgust capped at its 436), and at the first count
the fakes whose class the real-data classifier (``--classifier``, by default the bundled model:
trained on Training) believes with at least each ``--filter`` confidence, as
``synthetic.filter_confidence`` keeps them in the pipeline: drawn from up to
``MAX_DRAW_FACTOR`` times as many candidates. Training only for the classifiers; PublicTest only
for the numbers.

    python benchmarks/gan_sampling_cas.py results/gan/generator.safetensors \
        --count 1000 --count 3000 --filter 0.5 --json results/gan/sampling-cas.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.data import load_dataset
from ganpso.data.config import DataConfig
from ganpso.device import describe_device, resolve_device
from ganpso.gan.cas import classification_accuracy_score
from ganpso.gan.checkpoint import load_generator
from ganpso.gan.evaluation import class_subset, draw_fakes, stack_classes
from ganpso.gan.feature_scores import CLASSES
from ganpso.inference import EmotionPredictor, default_model_path
from ganpso.pipeline.balance import MAX_DRAW_FACTOR, SyntheticPool, class_confidence
from machine import machine_facts


def filtered_fakes(
    generator: Any, predictor: EmotionPredictor, count: int, threshold: float, seed: int
) -> tuple[dict[int, np.ndarray], list[float]]:
    """Per class, the first ``count`` candidates the classifier gives ``threshold`` or more,
    and the fraction of all candidates that pass (how often the class is recognisable)."""
    candidates = draw_fakes(generator, MAX_DRAW_FACTOR * count, seed)
    confidence = [class_confidence(faces, k, predictor) for k, faces in candidates.items()]
    pool = SyntheticPool(list(candidates.values()), confidence)  # the pipeline's selection
    kept = {k: pool.select(k, count, threshold) for k in candidates}
    return kept, [round(float((c >= threshold).mean()), 4) for c in confidence]


def cas_row(kind: str, images: dict[int, np.ndarray], public: Any, args: Any) -> dict[str, Any]:
    started = time.perf_counter()
    score = classification_accuracy_score(
        *stack_classes(images), public, args.cas_epochs, args.device, seed=args.seed
    )
    row = {
        "kind": kind,
        "images_per_class": [len(images[k]) for k in CLASSES],
        "cas": score["accuracy"],
        "cas_last_epoch": score["accuracy_last_epoch"],
        "macro_f1": score["macro_f1"],
        "recall": score["per_class_recall"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"{kind}: CAS {row['cas']:.4f}  ({row['images_per_class']})", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("generator", type=Path, help="generator.safetensors")
    parser.add_argument("--count", type=int, action="append", default=[])
    parser.add_argument("--filter", type=float, action="append", default=[])
    parser.add_argument("--classifier", type=Path, default=None, help="default: bundled model")
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--cas-epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    args.count = counts = args.count or [1000]

    started = time.perf_counter()
    dataset = load_dataset(DataConfig(source=args.data))
    train, public = dataset["Training"], dataset["PublicTest"]
    generator, header = load_generator(args.generator)
    rows: list[dict[str, Any]] = []

    def keep(row: dict[str, Any]) -> None:  # written after every row: a crash keeps the rest
        rows.append(row)
        write(args, rows, int(header["step"]), time.perf_counter() - started)

    for count in counts:
        real = {k: class_subset(train, k, count, args.seed) for k in CLASSES}
        keep(cas_row(f"real, {count} per class", real, public, args))
        keep(
            cas_row(
                f"fakes, {count} per class", draw_fakes(generator, count, args.seed), public, args
            )
        )
    predictor = EmotionPredictor.from_pretrained(args.classifier or default_model_path())
    for threshold in args.filter:
        kept, pass_rate = filtered_fakes(generator, predictor, counts[0], threshold, args.seed)
        kind = f"fakes, {counts[0]} per class, confidence >= {threshold}"
        keep(cas_row(kind, kept, public, args) | {"pass_rate": pass_rate})
    print(f"wrote {args.json}")


def write(args: argparse.Namespace, rows: list[dict[str, Any]], step: int, seconds: float) -> None:
    result = {
        "command": f"python benchmarks/gan_sampling_cas.py {args.generator} "
        + " ".join(f"--count {c}" for c in args.count)
        + "".join(f" --filter {t}" for t in args.filter)
        + f" --cas-epochs {args.cas_epochs} --seed {args.seed} --json {args.json}",
        "generator": str(args.generator),
        "generator_step": step,
        "filter_classifier": str(args.classifier or default_model_path()),
        "rows": rows,
        "seconds": round(seconds, 1),
        "device": describe_device(resolve_device(args.device)),
        "machine": machine_facts(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
