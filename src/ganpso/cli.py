"""``ganpso`` command line: parses and validates, then calls the library.

Every user-facing problem (bad data, bad config, bad checkpoint) ends the command with one line
on stderr and exit code 2; an interrupted training run says how to resume it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import ganpso
from ganpso.config import TrainConfig, apply_overrides, read_yaml
from ganpso.emotions import SPLITS
from ganpso.errors import ConfigError, GanpsoError

DESCRIPTION = """\
GAN-PSO: facial emotion recognition on FER2013 (angry, disgust, fear, happy, sad, surprise,
neutral). Protocol: weights are fitted on Training, every choice is made on PublicTest, and
PrivateTest is evaluated once, for the final report."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganpso", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"ganpso {ganpso.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    add_inference_commands(commands)
    return parser


def add_inference_commands(commands: Any) -> None:
    model_help = "a .safetensors checkpoint, a run folder or an .onnx export (default: bundled)"
    predict = commands.add_parser(
        "predict",
        help="find faces in photos and name their emotions",
        description="Predict the emotion of every face in photos of any size and colour. Inputs "
        "may be image files, folders (searched recursively) and zip archives. Bad files are "
        "listed and skipped; the others finish. Exit code 2 when any input failed.",
    )
    predict.add_argument("images", nargs="+", type=Path, help="image files, folders or zips")
    predict.add_argument("--model", type=Path, help=model_help)
    output = predict.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="JSON lines, one per image")
    output.add_argument("--csv", action="store_true", help="CSV, one row per face")
    predict.add_argument(
        "--no-detect",
        action="store_true",
        help="treat each image as an already-cropped face (FER2013-style), no detection",
    )
    predict.add_argument("--tta", action="store_true", help="average 10 crops (slower)")
    predict.add_argument("--batch-size", type=int, default=256, help="faces per forward pass")
    predict.add_argument("--device", default="cpu", help="cpu, cuda or auto (PyTorch models)")

    export = commands.add_parser(
        "export",
        help="export a classifier to ONNX, checked against PyTorch",
        description="Export to ONNX (dynamic batch, crops in, logits out, classes and "
        "preprocessing in the metadata). The export is kept only if its logits match PyTorch "
        "within 1e-4; with --check-data, on real PublicTest faces.",
    )
    export.add_argument("--onnx", action="store_true", required=True, help="export format")
    export.add_argument("--model", type=Path, help=model_help.replace(" or an .onnx export", ""))
    export.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    export.add_argument("--check-data", help="dataset whose PublicTest faces check the export")

    serve = commands.add_parser(
        "serve",
        help="a local web page: upload a photo, see face boxes and emotion bars",
        description="Serve the demo page on http://HOST:PORT/ (127.0.0.1 by default: only this "
        "machine can reach it). Ctrl+C stops it.",
    )
    serve.add_argument("--model", type=Path, help=model_help)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-upload-mb", type=float, default=10, help="upload size limit")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = "ganpso " + shlex.join(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"
    try:
        handlers = {
            "train": run_train,
            "evaluate": run_evaluate,
            "predict": run_predict,
            "export": run_export,
            "serve": run_serve,
        }
        return handlers[args.command](args, command)
    except GanpsoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "interrupted; rerun with --resume to continue from the last finished epoch",
            file=sys.stderr,
        )
        return 130


def resolve_train_config(args: argparse.Namespace) -> TrainConfig:
    raw: dict[str, Any] = read_yaml(args.config) if args.config else {}
    overrides = list(args.overrides)
    if args.skip_bad_images:
        overrides.append("data.skip_bad_images=true")
    for key, value in (("data.source", args.data), ("seed", args.seed), ("device", args.device)):
        if value is not None:
            overrides.append(f"{key}={value}")
    return TrainConfig.from_dict(apply_overrides(raw, overrides))


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


def run_predict(args: argparse.Namespace, command: str) -> int:
    import csv
    import json

    from ganpso.inference import EmotionPredictor

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size}: must be at least 1")
    predictor = EmotionPredictor.from_pretrained(
        args.model, device=args.device, tta=args.tta, batch_size=args.batch_size
    )
    writer = csv.writer(sys.stdout) if args.csv else None
    if writer:
        writer.writerow(
            ["source", "face", "x", "y", "width", "height", "emotion", *predictor.classes]
        )
    failed = 0
    progress = sys.stderr.isatty() and not (args.json or args.csv)
    for result in predictor.predict_files(args.images, not args.no_detect, progress):
        failed += result.error is not None
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
        if args.json:
            print(json.dumps(result.to_dict()))
        elif writer:
            for index, face in enumerate(result.faces):
                box = face.box.as_list() if face.box else ["", "", "", ""]
                probs = [f"{face.probabilities[c]:.6f}" for c in predictor.classes]
                writer.writerow([result.source, index, *box, face.emotion, *probs])
        elif not result.error:
            print(format_prediction(result))
    if failed:
        print(f"{failed} input(s) could not be read (listed above)", file=sys.stderr)
    return 2 if failed else 0


def format_prediction(result: Any) -> str:
    if not result.faces:
        return f"{result.source}: no face found"
    parts = []
    for face in result.faces:
        where = (
            f" at {face.box.x},{face.box.y} {face.box.width}x{face.box.height}" if face.box else ""
        )
        parts.append(f"{face.emotion} ({face.probabilities[face.emotion]:.0%}){where}")
    return f"{result.source}: " + "; ".join(parts)


def run_export(args: argparse.Namespace, command: str) -> int:
    from ganpso.inference import default_model_path
    from ganpso.inference.export import export_onnx

    model = args.model or default_model_path()
    checkpoint = model / "best.safetensors" if model.is_dir() else model
    faces = None
    if args.check_data:
        from ganpso.config import DataConfig
        from ganpso.data import load_dataset

        faces = load_dataset(DataConfig(source=args.check_data))["PublicTest"].images[:512]
    report = export_onnx(checkpoint, args.out, faces)
    print(
        f"wrote {args.out}: max |ONNX - PyTorch| logit difference {report['max_abs_diff']:.2e} "
        f"on {report['faces_checked']} {'PublicTest' if faces is not None else 'random'} faces"
    )
    return 0


def run_serve(args: argparse.Namespace, command: str) -> int:
    from ganpso.inference import EmotionPredictor
    from ganpso.inference.server import PredictionServer

    predictor = EmotionPredictor.from_pretrained(args.model)
    try:
        server = PredictionServer(
            predictor, args.host, args.port, int(args.max_upload_mb * 1024 * 1024)
        )
    except OSError as exc:
        raise ConfigError(f"{args.host}:{args.port}: cannot listen ({exc.strerror})") from None
    print(f"serving {predictor.model_path} on {server.url} (Ctrl+C stops)")
    try:
        server.serve_forever()
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
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


if __name__ == "__main__":
    raise SystemExit(main())
