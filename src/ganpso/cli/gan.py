"""``ganpso gan train | sample | standing-stats | evaluate``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ganpso.cli.classifier import raw_config, write_run_record
from ganpso.cli.parser import add_override_argument
from ganpso.data.loading import locate_source
from ganpso.emotions import EMOTIONS
from ganpso.errors import ConfigError

TRUNCATION_HELP = (
    "draw latents truncated at this many standard deviations: typical faces over diverse ones "
    "(default: untruncated)"
)


def add_gan_commands(commands: Any) -> None:
    gan = commands.add_parser(
        "gan",
        help="train, sample and evaluate the class-conditional GAN",
        description="The class-conditional GAN that synthesises faces for rare emotions. "
        "Trained on the Training split only.",
    )
    gan_commands = gan.add_subparsers(dest="gan_command", required=True, metavar="GAN_COMMAND")
    train = gan_commands.add_parser(
        "train",
        help="train the GAN (progress per 100 steps, checkpoints, sample grids, --resume)",
        description="Train on Training. Writes config.yaml, history.jsonl, gan.safetensors, "
        "gan-state.pt, generator.safetensors and samples/ (one row per emotion) into --out.",
    )
    train.add_argument(
        "--config",
        type=Path,
        help="YAML config, e.g. configs/gan.yaml (default: GanConfig's defaults)",
    )
    add_override_argument(train, example="steps=5000")
    train.add_argument("--data", help="dataset: FER2013 csv/zip or folder (default: the config's)")
    train.add_argument("--seed", type=int, help="random seed (default: the config's)")
    train.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the config's)")
    train.add_argument("--out", type=Path, required=True, help="run folder (required)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in --out, with its config.yaml",
    )

    sample = gan_commands.add_parser(
        "sample",
        help="draw faces of one emotion",
        description="Draw --n faces of --class from a GAN run folder or generator.safetensors; "
        "PNG files (default) or one .npz, with a JSON file recording the seed.",
    )
    sample.add_argument("generator", type=Path, help="GAN run folder or generator.safetensors")
    sample.add_argument(
        "--class",
        dest="emotion",
        required=True,
        choices=EMOTIONS,
        help="emotion to draw (required): " + ", ".join(EMOTIONS),
    )
    sample.add_argument("--n", type=int, default=100, help="number of faces")
    sample.add_argument("--seed", type=int, default=0, help="latent seed: same seed, same faces")
    sample.add_argument("--truncation", type=float, help=TRUNCATION_HELP)
    sample.add_argument(
        "--format", choices=("png", "npz"), default="png", help="PNG files or one .npz array"
    )
    sample.add_argument("--out", type=Path, required=True, help="output folder (required)")
    sample.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")

    standing = gan_commands.add_parser(
        "standing-stats",
        help="recompute a saved generator's batch-norm statistics with its own weights",
        description="Rewrite generator.safetensors (or --out) with batch-norm statistics "
        "recomputed from --batches batches of 256 of its own fakes, as training does when "
        "standing_stats_batches is set: for generators saved before that option.",
    )
    standing.add_argument("generator", type=Path, help="GAN run folder or generator.safetensors")
    standing.add_argument("--batches", type=int, default=20, help="batches of 256 fakes")
    standing.add_argument("--seed", type=int, default=0, help="latent seed of those fakes")
    standing.add_argument("--out", type=Path, help="where to write (default: in place)")

    evaluate = gan_commands.add_parser(
        "evaluate",
        help="FID/KID on classifier features, CAS, memorisation and diversity",
        description="Judge the generator by numbers: FID and KID on the features of a real-data "
        "classifier (fake vs PublicTest, beside Training vs PublicTest as the floor), per class; "
        "the accuracy of a classifier trained only on fakes (CAS) on PublicTest; nearest-"
        "training-image distances (near-copies); per-class diversity. Writes gan-metrics.json.",
    )
    evaluate.add_argument("generator", type=Path, help="GAN run folder or generator.safetensors")
    evaluate.add_argument(
        "--classifier",
        type=Path,
        help="real-data classifier: run folder or .safetensors (default: the bundled model)",
    )
    evaluate.add_argument(
        "--data", default="../shared/data/fer2013.zip", help="dataset: FER2013 csv/zip or folder"
    )
    evaluate.add_argument(
        "--per-class",
        type=int,
        default=1000,
        help="fakes per class for FID/KID, near-copies and diversity",
    )
    evaluate.add_argument(
        "--cas-epochs", type=int, default=12, help="epochs of each CAS classifier"
    )
    evaluate.add_argument(
        "--cas-per-class", type=int, help="fakes per class for CAS (default: Training size / 7)"
    )
    evaluate.add_argument(
        "--cas-seeds", type=int, default=3, help="CAS classifiers to train and average"
    )
    evaluate.add_argument(
        "--ratio-draws",
        type=int,
        default=5,
        help="draws of fakes over which disgust's FID/KID ratios are averaged",
    )
    evaluate.add_argument(
        "--out", type=Path, help="folder for gan-metrics.json (default: the generator's folder)"
    )
    evaluate.add_argument("--truncation", type=float, help=TRUNCATION_HELP)
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def check_truncation(truncation: float | None) -> None:
    if truncation is not None and not 0 < truncation <= 10:
        raise ConfigError(f"--truncation {truncation}: must be in (0, 10]")


def run_gan_command(args: argparse.Namespace, command: str) -> int:
    """``ganpso gan GAN_COMMAND``: dispatch to the sub-command's handler."""
    handlers = {
        "train": run_gan_train,
        "sample": run_gan_sample,
        "standing-stats": run_gan_standing_stats,
        "evaluate": run_gan_evaluate,
    }
    return handlers[args.gan_command](args, command)


def run_gan_train(args: argparse.Namespace, command: str) -> int:
    from ganpso.data import load_dataset
    from ganpso.device import describe_device, resolve_precision
    from ganpso.gan import GanTrainer
    from ganpso.gan.config import GanConfig
    from ganpso.gan.trainer import resume_config

    config = resume_config(args.out) if args.resume else GanConfig.from_dict(raw_config(args))
    locate_source(config.data.source)  # before any compute: the dataset is there
    started = time.perf_counter()
    dataset = load_dataset(config.data)
    trainer = GanTrainer(config, args.out)
    result = trainer.fit(dataset["Training"], resume=args.resume)
    write_run_record(
        args.out / "run.json",
        command,
        describe_device(trainer.device),
        time.perf_counter() - started,
        result["seconds"],
        resolve_precision(config.precision, trainer.device),
    )
    minutes = result["seconds"] / 60
    print(f"{result['steps']} steps in {minutes:.1f} min; samples: {args.out}/samples.png")
    return 0


def run_gan_sample(args: argparse.Namespace, command: str) -> int:
    from ganpso.gan import load_generator, synthesize, write_samples

    if args.n < 1:
        raise ConfigError(f"--n {args.n}: must be at least 1")
    generator, _ = load_generator(args.generator, args.device)
    label = EMOTIONS.index(args.emotion)
    check_truncation(args.truncation)
    faces = synthesize(generator, label, args.n, args.seed, truncation=args.truncation)
    target = write_samples(faces, args.out, label, args.seed, args.format)
    print(f"wrote {args.n} {args.emotion} faces (seed {args.seed}) to {target}")
    return 0


def run_gan_standing_stats(args: argparse.Namespace, command: str) -> int:
    from ganpso.gan import load_generator
    from ganpso.gan.checkpoint import write_generator
    from ganpso.gan.networks import standing_statistics

    if args.batches < 1:
        raise ConfigError(f"--batches {args.batches}: must be at least 1")
    source = args.generator / "generator.safetensors" if args.generator.is_dir() else args.generator
    generator, header = load_generator(source)
    standing_statistics(generator, args.batches, seed=args.seed)
    target = args.out or source
    write_generator(target, generator, {**header, "standing_stats_batches": args.batches})
    print(f"wrote {target}: batch-norm statistics from {args.batches} batches of its own fakes")
    return 0


def run_gan_evaluate(args: argparse.Namespace, command: str) -> int:
    from ganpso.gan.evaluation import evaluate_generator
    from ganpso.inference import default_model_path
    from ganpso.metrics import write_json

    check_truncation(args.truncation)
    out = args.out or (args.generator if args.generator.is_dir() else args.generator.parent)
    report = evaluate_generator(
        args.generator,
        args.classifier or default_model_path(),
        args.data,
        per_class=args.per_class,
        cas_epochs=args.cas_epochs,
        cas_per_class=args.cas_per_class,
        cas_seeds=args.cas_seeds,
        ratio_draws=args.ratio_draws,
        device=args.device,
        command=command,
        truncation=args.truncation,
    )
    path = out / "gan-metrics.json"
    write_json(report, path)
    print(report["summary"])
    print(f"wrote {path}")
    return 0
