"""``ganpso train`` and ``ganpso evaluate``: the classifier's commands, and the run record."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import ganpso
from ganpso.config import TrainConfig, apply_overrides, read_yaml
from ganpso.emotions import SPLITS
from ganpso.errors import ConfigError


def add_classifier_commands(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train a classifier on Training, selecting the best epoch on PublicTest",
        description="Train a classifier. Writes config.yaml, history.jsonl, best.safetensors, "
        "curves.png and metrics-PublicTest.json into --out; --resume continues after a crash.",
    )
    train.add_argument("--config", type=Path, help="YAML config (default: built-in defaults)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set epochs=10 --set model.width=16 (repeatable)",
    )
    train.add_argument("--data", help="dataset: FER2013 zip/folder, fer2013.csv or class folders")
    train.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="skip corrupt or unreadable images (and report how many) instead of stopping",
    )
    train.add_argument("--seed", type=int, help="random seed (default: the config's)")
    train.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the config's)")
    train.add_argument("--out", type=Path, help="run folder (default: runs/train-<time>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--dry-run", action="store_true", help="validate config and data, print the config, stop"
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a trained classifier on PublicTest or PrivateTest",
        description="Evaluate a run folder (its best.safetensors) or a .safetensors file; writes "
        "metrics-<split>.json (accuracy, precision, recall, F1, G-measure, G-mean, per class, "
        "bootstrap 95%% intervals) and confusion-<split>.png.",
    )
    evaluate.add_argument("model", type=Path, help="run folder or .safetensors checkpoint")
    evaluate.add_argument("--split", choices=SPLITS[1:], default="PublicTest")
    evaluate.add_argument("--data", help="dataset (default: the run's config, else the default)")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    evaluate.add_argument("--out", type=Path, help="folder for the report (default: the run's)")
    evaluate.add_argument("--no-tta", action="store_true", help="centre crop + flip only")
    evaluate.add_argument(
        "--force",
        action="store_true",
        help="evaluate PrivateTest again although this run already has a PrivateTest report",
    )


def resolve_train_config(args: argparse.Namespace) -> TrainConfig:
    extra = ["data.skip_bad_images=true"] if args.skip_bad_images else []
    return TrainConfig.from_dict(raw_config(args, extra))


def raw_config(args: argparse.Namespace, extra: list[str] | None = None) -> dict[str, Any]:
    """``--config`` YAML with ``--set`` and the ``--data/--seed/--device`` flags applied."""
    raw: dict[str, Any] = read_yaml(args.config) if args.config else {}
    overrides = [*args.overrides, *(extra or [])]
    for key, value in (("data.source", args.data), ("seed", args.seed), ("device", args.device)):
        if value is not None:
            overrides.append(f"{key}={value}")
    return apply_overrides(raw, overrides)


def run_train(args: argparse.Namespace, command: str) -> int:
    from ganpso.classifier import fit, load_classifier
    from ganpso.classifier.evaluation import evaluate_checkpoint, write_report
    from ganpso.data import load_dataset
    from ganpso.device import describe_device, resolve_device

    out = args.out or Path("runs") / time.strftime("train-%Y%m%d-%H%M%S")
    if args.resume:
        if not (out / "config.yaml").exists():
            raise ConfigError(f"{out}: no run to resume (config.yaml missing); check --out")
        config = TrainConfig.from_dict(read_yaml(out / "config.yaml"))
        if args.config or args.overrides:
            resolved = resolve_train_config(args)
            if resolved != config:
                raise ConfigError(
                    f"{out}/config.yaml: differs from --config/--set; resume without them"
                )
    else:
        config = resolve_train_config(args)
    device = resolve_device(config.device)
    if not Path(config.data.source).expanduser().exists():
        raise ConfigError(f"{config.data.source}: dataset not found (set --data or data.source)")
    if args.dry_run:
        print(f"# resolved config (device: {describe_device(device)}, run folder: {out})")
        print(_yaml_text(config.to_dict()), end="")
        return 0

    started = time.perf_counter()
    dataset = load_dataset(config.data)
    print(dataset.summary())
    result = fit(config, dataset, out, resume=args.resume, progress=sys.stderr.isatty())
    checkpoint = load_classifier(out / "best.safetensors", device=device)
    report = evaluate_checkpoint(
        checkpoint,
        dataset["PublicTest"],
        "PublicTest",
        device=device,
        tta=config.tta,
        precision=config.precision,
        command=command,
        seed=config.seed,
    )
    write_report(report, out)
    wall = time.perf_counter() - started
    write_run_record(out / "run.json", command, describe_device(device), wall, result.seconds)
    print(
        f"best epoch {result.best_epoch}: PublicTest accuracy {report['accuracy']:.4f}, "
        f"macro-F1 {report['macro']['f1']:.4f} (TTA={config.tta}); training {result.seconds:.0f}s; "
        f"run folder {out}"
    )
    return 0


def run_evaluate(args: argparse.Namespace, command: str) -> int:
    from ganpso.classifier import load_classifier
    from ganpso.classifier.evaluation import evaluate_checkpoint, write_report
    from ganpso.config import DataConfig
    from ganpso.data import load_dataset
    from ganpso.device import resolve_device
    from ganpso.metrics import format_metrics_table

    checkpoint_path = args.model / "best.safetensors" if args.model.is_dir() else args.model
    run_dir = checkpoint_path.parent
    data = DataConfig()
    precision, seed = "bf16", 0
    if (run_dir / "config.yaml").exists():
        run_config = TrainConfig.from_dict(read_yaml(run_dir / "config.yaml"))
        data, precision, seed = run_config.data, run_config.precision, run_config.seed
    if args.data:
        data.source = args.data
    out = args.out or run_dir
    if (
        args.split == "PrivateTest"
        and (out / "metrics-PrivateTest.json").exists()
        and not args.force
    ):
        raise ConfigError(
            f"{out}/metrics-PrivateTest.json: PrivateTest was already evaluated for this model; "
            "it is touched once, for the final report (pass --force to evaluate it again)"
        )
    device = resolve_device(args.device)
    checkpoint = load_classifier(checkpoint_path, device=device)
    dataset = load_dataset(data)
    report = evaluate_checkpoint(
        checkpoint,
        dataset[args.split],
        args.split,
        device=device,
        tta=not args.no_tta,
        precision=precision,
        command=command,
        seed=seed,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = write_report(report, out)
    print(format_metrics_table(report))
    print(f"wrote {path}")
    return 0


def write_run_record(
    path: Path, command: str, device: str, wall: float, train_seconds: float
) -> None:
    import torch

    from ganpso.metrics import write_json

    write_json(
        {
            "command": command,
            "device": device,
            "wall_seconds": round(wall, 1),
            "train_seconds": round(train_seconds, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "ganpso": ganpso.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        path,
    )


def _yaml_text(data: dict[str, Any]) -> str:
    import io

    import yaml

    buffer = io.StringIO()
    yaml.safe_dump(data, buffer, sort_keys=False)
    return buffer.getvalue()
