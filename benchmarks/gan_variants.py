"""Which GAN settings learn fastest? Short runs of config variants, judged by the same numbers.

Each variant is the base GAN config with ``KEY=VALUE`` overrides, trained for ``--steps`` from the
same seed (resumable: a finished variant is not retrained), then judged by ``evaluate_generator``
at a reduced size (fakes per class, CAS epochs and CAS set size as given). Training only for the
GAN; PublicTest only for the numbers.

    python benchmarks/gan_variants.py --steps 2000 --out runs/gan-variants \
        --variant base --variant lr_g=1e-4 --variant lr_g=1e-4,ac_weight=2 \
        --json results/gan/variants.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ganpso.config import apply_overrides, read_yaml
from ganpso.data import load_dataset
from ganpso.device import describe_device, resolve_device
from ganpso.gan import GanTrainer
from ganpso.gan.config import GanConfig
from ganpso.gan.evaluation import evaluate_generator
from ganpso.inference.predictor import default_model_path


def variant_config(base: dict[str, Any], spec: str, steps: int) -> GanConfig:
    overrides = [] if spec == "base" else spec.split(",")
    raw = apply_overrides(base, [*overrides, f"steps={steps}", "time_limit_minutes=null"])
    return GanConfig.from_dict(raw)


def train_variant(config: GanConfig, out: Path) -> float:
    """Seconds spent training now (0 when the variant finished earlier)."""
    if (out / "done.json").exists():
        return float(json.loads((out / "done.json").read_text())["seconds"])
    started = time.perf_counter()
    split = load_dataset(config.data)["Training"]
    trainer = GanTrainer(config, out, log=lambda line: print(f"  {line}", flush=True))
    trainer.fit(split, resume=(out / "gan-state.pt").exists())
    seconds = time.perf_counter() - started
    (out / "done.json").write_text(json.dumps({"seconds": round(seconds, 1)}))
    return seconds


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    ratios = report["disgust_vs_other_classes"]
    return {
        "cas": report["cas"]["accuracy"],
        "cas_last_epoch": report["cas"]["accuracy_last_epoch"],
        "cas_real_reference": report["cas_real_reference"]["accuracy"],
        "cas_recall": report["cas"]["per_class_recall"],
        "fid": report["fid_kid"]["overall"]["fid"],
        "kid": report["fid_kid"]["overall"]["kid"],
        "disgust_fid_ratio": ratios["fid_ratio"],
        "disgust_kid_ratio": ratios["kid_ratio"],
        "near_copy_fraction": report["memorisation"]["near_copy_fraction"],
        "diversity": report["diversity_ratio_fake_over_real"],
        "high_frequency_ratio": report["artefacts"]["high_frequency_ratio"],
        "grid_peak_ratio": report["artefacts"]["grid_peak_ratio"],
        "grid_peak_frequency": report["artefacts"]["grid_peak_frequency"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/gan.yaml"))
    parser.add_argument("--variant", action="append", required=True, help="base or K=V,K=V")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--classifier", type=Path, default=None, help="default: bundled model")
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--cas-epochs", type=int, default=4)
    parser.add_argument("--cas-per-class", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("runs/gan-variants"))
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    classifier = args.classifier or default_model_path()
    base = read_yaml(args.config)
    rows = []
    for spec in args.variant:
        config = variant_config(base, spec, args.steps)
        folder = args.out / spec.replace(",", "_").replace("=", "-")
        print(f"[{spec}] training {args.steps} steps in {folder}", flush=True)
        seconds = train_variant(config, folder)
        report = evaluate_generator(
            folder,
            classifier,
            config.data.source,
            per_class=args.per_class,
            cas_epochs=args.cas_epochs,
            cas_per_class=args.cas_per_class,
            device=config.device,
        )
        rows.append({"variant": spec, "train_seconds": round(seconds, 1), **summarise(report)})
        print(f"[{spec}] {report['summary']}", flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result(args, rows), indent=1) + "\n")


def result(args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "command": "python benchmarks/gan_variants.py "
        + " ".join(f"--variant {v}" for v in args.variant)
        + f" --steps {args.steps} --per-class {args.per_class} --cas-epochs {args.cas_epochs}"
        f" --cas-per-class {args.cas_per_class}"
        + (f" --classifier {args.classifier}" if args.classifier else ""),
        "device": describe_device(resolve_device("auto")),
        # FID, KID and the ratios are distances in this classifier's features: rows compare
        # only under the same one (CAS and the spectrum do not depend on it)
        "feature_classifier": str(args.classifier or default_model_path()),
        "steps": args.steps,
        "rows": rows,
    }


if __name__ == "__main__":
    main()
