"""Do typical faces teach more than diverse ones? A generator judged at several truncations.

The same generator is judged by ``evaluate_generator`` (at the reduced size of
``gan_variants.py``) with its latents drawn untruncated and truncated at each ``--truncation``
(standard deviations): CAS on PublicTest, FID/KID, near-copies, diversity and artefacts per row.
Training only for the fakes' classifier; PublicTest only for the numbers.

    python benchmarks/gan_truncation.py results/gan/generator.safetensors \
        --truncation 1.5 --truncation 1.0 --truncation 0.7 \
        --json results/gan/truncation-screen.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gan_variants import summarise
from ganpso.device import describe_device, resolve_device
from ganpso.gan.evaluation import evaluate_generator
from ganpso.inference.predictor import default_model_path
from machine import machine_facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("generator", type=Path, help="generator.safetensors or its GAN folder")
    parser.add_argument("--truncation", type=float, action="append", default=[])
    parser.add_argument("--classifier", type=Path, default=None, help="default: bundled model")
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--cas-epochs", type=int, default=4)
    parser.add_argument("--cas-per-class", type=int, default=1000)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    for truncation in [None, *args.truncation]:
        started = time.perf_counter()
        report = evaluate_generator(
            args.generator,
            args.classifier or default_model_path(),
            args.data,
            per_class=args.per_class,
            cas_epochs=args.cas_epochs,
            cas_per_class=args.cas_per_class,
            truncation=truncation,
        )
        seconds = round(time.perf_counter() - started, 1)
        rows.append({"truncation": truncation, "seconds": seconds, **summarise(report)})
        print(f"[truncation {truncation}] {report['summary']}", flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result(args, rows), indent=1) + "\n")


def result(args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "command": f"python benchmarks/gan_truncation.py {args.generator} "
        + " ".join(f"--truncation {t}" for t in args.truncation)
        + f" --per-class {args.per_class} --cas-epochs {args.cas_epochs}"
        f" --cas-per-class {args.cas_per_class} --json {args.json}",
        "device": describe_device(resolve_device("auto")),
        "machine": machine_facts(),
        "rows": rows,
    }


if __name__ == "__main__":
    main()
