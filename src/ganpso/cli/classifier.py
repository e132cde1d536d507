"""``ganpso train``: a classifier from scratch or fine-tuned, and the run record."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import ganpso
from ganpso.classifier.config import TrainConfig
from ganpso.cli.parser import add_override_argument
from ganpso.config import apply_overrides, read_yaml
from ganpso.errors import ConfigError


def add_classifier_commands(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train a classifier on Training, selecting the best epoch on PublicTest",
        description="Train a classifier. Writes config.yaml, history.jsonl, best.safetensors, "
        "curves.png and metrics-PublicTest.json into --out; --resume continues after a crash.",
    )
    train.add_argument("--config", type=Path, help="YAML config (default: built-in defaults)")
    add_override_argument(train, example="epochs=10 --set model.width=16")
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
        "--init",
        metavar="CHECKPOINT",
        help="fine-tune: start from this .safetensors (or `bundled`), with its model and, unless "
        f"set, {', '.join(f'{k}={v}' for k, v in FINETUNE_DEFAULTS.items())}; the held-out "
        "split is scored before and after (finetune.json)",
    )
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config, read the data, print its class counts and the config, stop",
    )


def resolve_train_config(args: argparse.Namespace) -> TrainConfig:
    extra = ["data.skip_bad_images=true"] if args.skip_bad_images else []
    raw = raw_config(args, extra)
    if getattr(args, "init", None):
        raw = with_initial_model(raw, args.init)
    return TrainConfig.from_dict(raw)


# a fine-tuning starts from trained weights: a few epochs at a tenth of the peak learning rate
FINETUNE_DEFAULTS = {"epochs": 10, "lr": 0.01}


def with_initial_model(raw: dict[str, Any], init: str) -> dict[str, Any]:
    """``raw`` set up to fine-tune ``init``: its model section, and the fine-tuning defaults."""
    from ganpso.checkpoint import read_header
    from ganpso.classifier.checkpoint import FORMAT
    from ganpso.inference.predictor import default_model_path

    path = default_model_path() if init == "bundled" else Path(init)
    if not path.is_file():
        raise ConfigError(f"{path}: --init checkpoint not found (a .safetensors or `bundled`)")
    model = read_header(path, FORMAT).get("model")
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: checkpoint header has no model section")
    asked = raw.get("model") or {}
    clash = {k: v for k, v in asked.items() if model.get(k, v) != v}
    if clash:
        raise ConfigError(f"--init {path}: its model is {model}; --config/--set asks {clash}")
    return {**FINETUNE_DEFAULTS, **raw, "model": model, "init": str(path)}


def raw_config(args: argparse.Namespace, extra: list[str] | None = None) -> dict[str, Any]:
    """``--config`` YAML with ``--set`` and the ``--data/--seed/--device`` flags applied."""
    raw: dict[str, Any] = read_yaml(args.config) if args.config else {}
    overrides = [*args.overrides, *(extra or [])]
    for key, value in (("data.source", args.data), ("seed", args.seed), ("device", args.device)):
        if value is not None:
            overrides.append(f"{key}={value}")
    return apply_overrides(raw, overrides)


def run_train(args: argparse.Namespace, command: str) -> int:
    import torch

    from ganpso.classifier import build_model
    from ganpso.data import load_dataset
    from ganpso.device import describe_device, resolve_device, resolve_precision
    from ganpso.pipeline.evaluation import evaluate_public
    from ganpso.pipeline.training import train_classifier

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
    with torch.device("meta"):  # the model is buildable (a known name), at no memory cost
        build_model(config.model)
    started = time.perf_counter()
    dataset = load_dataset(config.data)  # proves the source readable, for a dry run too
    print(dataset.summary())
    if args.dry_run:
        print(f"# resolved config (device: {describe_device(device)}, run folder: {out})")
        print(_yaml_text(config.to_dict()), end="")
        return 0

    result = train_classifier(
        config, dataset, out, resume=args.resume, progress=sys.stderr.isatty()
    )
    report = evaluate_public(config, out, dataset, command)
    if config.init:
        report_fine_tuning(config, dataset, out, command)
    wall = time.perf_counter() - started
    precision = resolve_precision(config.precision, device)
    write_run_record(
        out / "run.json", command, describe_device(device), wall, result.seconds, precision
    )
    print(
        f"best epoch {result.best_epoch}: PublicTest accuracy {report['accuracy']:.4f}, "
        f"macro-F1 {report['macro']['f1']:.4f} (TTA={config.tta}); training {result.seconds:.0f}s; "
        f"run folder {out}"
    )
    return 0


def report_fine_tuning(config: TrainConfig, dataset: Any, out: Path, command: str) -> None:
    """The held-out split scored by the starting model and by the fine-tuned one.

    A user's own data has no official split: its seeded test part is held out (never seen by
    training or the epoch choice). On FER2013 that part is PrivateTest, which stays untouched:
    PublicTest is scored instead.
    """
    from ganpso.inference import EmotionPredictor
    from ganpso.inference.scoring import score_faces
    from ganpso.metrics import write_json

    held_out = "PublicTest" if dataset.official_split else "PrivateTest"
    scores = {}
    for name, path in (("before", Path(config.init or "")), ("after", out / "best.safetensors")):
        predictor = EmotionPredictor.from_pretrained(path, tta=config.tta)
        scores[name], _ = score_faces(
            predictor, dataset[held_out], held_out, source=config.data.source, command=command
        )
    from ganpso.cli.evaluation import split_note

    note = split_note(dataset, config.data, held_out)
    write_json({"held_out": held_out, "split_note": note, **scores}, out / "finetune.json")
    before, after = scores["before"], scores["after"]
    print(
        f"held-out {held_out} ({before['n']} faces; {note}): accuracy "
        f"{before['accuracy']:.4f} -> {after['accuracy']:.4f}, macro-F1 "
        f"{before['macro']['f1']:.4f} -> {after['macro']['f1']:.4f} (over "
        f"{', '.join(after['macro_classes'])}); wrote {out / 'finetune.json'}"
    )


def write_run_record(
    path: Path, command: str, device: str, wall: float, train_seconds: float, precision: str
) -> None:
    """``precision``: what the run computed in (``auto`` resolved on its machine)."""
    import torch

    from ganpso.metrics import write_json

    write_json(
        {
            "command": command,
            "device": device,
            "precision": precision,
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
