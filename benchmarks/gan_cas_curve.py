"""How CAS grows with GAN training time: every snapshot of one training, judged alike.

A GAN trained with ``snapshot_every`` keeps its averaged generator along the way
(``snapshots/generator-<step>.safetensors``). Each snapshot and the final generator get the
same reduced CAS (a classifier trained on fakes only, scored on PublicTest; ``--cas-seeds``
classifier seeds) and the artefact measure on ``--per-class`` fakes; the real-data reference is
trained once. Training seconds per step come from the training's ``history.jsonl``. Writes a
JSON and a plot of CAS against training minutes: whether CAS is still rising when the budget
ends (steps limit it) or has flattened (capacity or data do).

    python benchmarks/gan_cas_curve.py runs/gan-curve --json results/gan/cas-curve.json \
        --plot results/gan/cas-curve.png
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
from ganpso.files import read_jsonl
from ganpso.gan.cas import classification_accuracy_score, mean_over_seeds
from ganpso.gan.checkpoint import load_generator
from ganpso.gan.evaluation import artefact_scores, class_subset, draw_fakes, stack_classes
from ganpso.gan.feature_scores import CLASSES
from ganpso.gan.trainer import SNAPSHOT_DIR


def generators(folder: Path) -> list[Path]:
    """The snapshots in step order, then the final generator if it is not one of them."""
    snapshots = sorted((folder / SNAPSHOT_DIR).glob("generator-*.safetensors"))
    final = folder / "generator.safetensors"
    steps = {int(path.stem.removeprefix("generator-")) for path in snapshots}  # the trainer's names
    if final.exists() and load_generator(final)[1]["step"] not in steps:
        snapshots.append(final)
    return snapshots


def training_seconds(folder: Path) -> dict[int, float]:
    """Training seconds at each logged step (``history.jsonl``), with 0 at step 0."""
    rows = read_jsonl(folder / "history.jsonl")
    return {0: 0.0} | {int(row["step"]): float(row["seconds"]) for row in rows}


def seconds_at(step: int, logged: dict[int, float]) -> float:
    steps = sorted(logged)
    return float(np.interp(step, steps, [logged[s] for s in steps]))


def judge(path: Path, train: Any, public: Any, args: argparse.Namespace) -> dict[str, Any]:
    generator, header = load_generator(path)
    count = args.cas_per_class
    fake_set = stack_classes(draw_fakes(generator, count, args.seed))
    cas = mean_over_seeds(
        [
            classification_accuracy_score(
                *fake_set, public, args.cas_epochs, args.device, seed=args.seed + k
            )
            for k in range(args.cas_seeds)
        ]
    )
    fakes = draw_fakes(generator, args.per_class, args.seed)
    floors = {k: class_subset(train, k, args.per_class, args.seed) for k in CLASSES}
    artefacts = artefact_scores(fakes, floors)
    return {
        "generator": str(path),
        "step": int(header["step"]),
        "cas": cas["accuracy"],
        "cas_per_seed": cas.get("accuracy_per_seed", [cas["accuracy"]]),
        "cas_recall": cas["per_class_recall"],
        "high_frequency_ratio": artefacts["high_frequency_ratio"],
        "grid_peak_ratio": artefacts["grid_peak_ratio"],
    }


def plot_curve(rows: list[dict[str, Any]], reference: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    minutes = [row["train_seconds"] / 60 for row in rows]
    axes.plot(minutes, [100 * row["cas"] for row in rows], "o-", label="CAS (fakes only)")
    axes.axhline(100 * reference, color="grey", linestyle="--", label="same recipe, real faces")
    for row, minute in zip(rows, minutes, strict=True):
        axes.annotate(f"{row['step']:,}", (minute, 100 * row["cas"]), fontsize=7)
    axes.set_xlabel("GAN training minutes (labels: steps)")
    axes.set_ylabel("PublicTest accuracy, %")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a GAN training folder with snapshots/")
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--cas-epochs", type=int, default=4)
    parser.add_argument("--cas-per-class", type=int, default=1000)
    parser.add_argument("--cas-seeds", type=int, default=1)
    parser.add_argument("--per-class", type=int, default=500, help="fakes for the artefacts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = load_dataset(DataConfig(source=args.data))
    train, public = dataset["Training"], dataset["PublicTest"]
    real_set = stack_classes(
        {k: class_subset(train, k, args.cas_per_class, args.seed) for k in CLASSES}
    )
    reference = classification_accuracy_score(
        *real_set, public, args.cas_epochs, args.device, seed=args.seed
    )["accuracy"]
    print(f"real-data reference: {reference:.4f}", flush=True)
    logged = training_seconds(args.folder)
    rows = []
    for path in generators(args.folder):
        row = judge(path, train, public, args)
        row["train_seconds"] = round(seconds_at(row["step"], logged), 1)
        rows.append(row)
        print(f"step {row['step']:6d}: CAS {row['cas']:.4f}", flush=True)
    result = {
        "command": "python benchmarks/gan_cas_curve.py "
        + f"{args.folder} --cas-epochs {args.cas_epochs} --cas-per-class {args.cas_per_class} "
        + f"--cas-seeds {args.cas_seeds} --per-class {args.per_class} --seed {args.seed}",
        "device": describe_device(resolve_device(args.device)),
        "seconds": round(time.perf_counter() - started, 1),
        "cas_real_reference": reference,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot_curve(rows, reference, args.plot)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
