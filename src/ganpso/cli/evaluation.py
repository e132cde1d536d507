"""``ganpso evaluate`` and ``ganpso calibrate``: a trained model scored on labelled faces."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganpso.classifier.config import TrainConfig
from ganpso.config import build_config, read_yaml
from ganpso.emotions import SPLITS
from ganpso.errors import ConfigError


def add_evaluation_commands(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score a classifier on FER2013's PublicTest/PrivateTest or on your own faces",
        description="Score a run folder (its best.safetensors), a .safetensors checkpoint or an "
        ".onnx export (default: the bundled model) on labelled faces: FER2013 in any layout, "
        "or your own class folders, zip or csv. Each image is taken whole as one face (no "
        "detection). FER2013 is scored on --split (PublicTest unless told); a source without "
        "an official split is scored whole unless --split asks for one part of the seeded "
        "80/10/10 split. Macro measures average over the classes that have images. Writes "
        "metrics-<split>.json (accuracy, precision, recall, F1, G-measure, G-mean, per class, "
        "bootstrap 95% intervals), confusion-<split>.png and predictions-<split>.npz (labels, "
        "predictions and probabilities in image order, for paired tests) into --out.",
    )
    evaluate.add_argument(
        "model", type=Path, nargs="?", help="run folder, .safetensors or .onnx (default: bundled)"
    )
    evaluate.add_argument(
        "--split",
        choices=[*SPLITS[1:], "all"],
        help="PublicTest for choices, PrivateTest once per model for the final report, all for "
        "every image (default: PublicTest for FER2013, all for other sources)",
    )
    evaluate.add_argument("--data", help="dataset (default: the run's config, else FER2013)")
    evaluate.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="NAME=EMOTION",
        help="read class folder NAME as EMOTION, beyond the built-in aliases (repeatable)",
    )
    evaluate.add_argument(
        "--ignore", action="append", default=[], metavar="NAME", help="skip class folder NAME"
    )
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    evaluate.add_argument(
        "--out",
        type=Path,
        help="folder for the report (default: the run's, else runs/evaluate-<time>)",
    )
    evaluate.add_argument("--no-tta", action="store_true", help="centre crop + flip only")
    evaluate.add_argument(
        "--force",
        action="store_true",
        help="evaluate PrivateTest again although this run already has a PrivateTest report",
    )

    calibrate = commands.add_parser(
        "calibrate",
        help="fit temperature scaling on PublicTest and store it in the checkpoint",
        description="Fit one temperature on PublicTest (it changes how sure each prediction "
        "sounds; with averaged views it may flip a near tie), store it in the .safetensors "
        "header so that predict, serve, evaluate and an ONNX export give calibrated "
        "probabilities, and write calibration.json (ECE, NLL and "
        "reliability bins before and after, the after also 2-fold cross-fitted within "
        "PublicTest) and reliability.png into --out.",
    )
    calibrate.add_argument("model", type=Path, help="run folder or .safetensors checkpoint")
    calibrate.add_argument("--data", help="dataset (default: the run's config, else FER2013)")
    calibrate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    calibrate.add_argument("--no-tta", action="store_true", help="centre crop + flip only")
    calibrate.add_argument(
        "--out", type=Path, help="folder for calibration.json (default: the checkpoint's)"
    )


def run_calibrate(args: argparse.Namespace, command: str) -> int:
    from ganpso.data import load_dataset
    from ganpso.device import describe_device, resolve_device
    from ganpso.inference import EmotionPredictor
    from ganpso.inference.calibration import calibrate, write_temperature
    from ganpso.metrics import write_json
    from ganpso.metrics.plots import plot_reliability

    path = args.model / "best.safetensors" if args.model.is_dir() else args.model
    run_dir = path.parent if (path.parent / "config.yaml").exists() else None
    data, precision, seed = evaluation_data(run_dir, args.data)
    device = resolve_device(args.device)
    predictor = EmotionPredictor.from_pretrained(
        path, device=str(device), precision=precision, tta=not args.no_tta, temperature=1.0
    )
    started = time.perf_counter()
    record = calibrate(predictor, load_dataset(data)["PublicTest"], seed=seed)
    write_temperature(path, record)
    out = args.out or path.parent
    out.mkdir(parents=True, exist_ok=True)
    curves = {"before": record["before"], "after (cross-fitted)": record["after_cross_fitted"]}
    plot_reliability(curves, out / "reliability.png", title=f"PublicTest (n={record['n']})")
    record |= {
        "model": str(path),
        "command": command,
        "device": describe_device(device),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(record, out / "calibration.json")
    print(
        f"temperature {record['temperature']:.3f}: PublicTest ECE {record['before']['ece']:.4f}"
        f" -> {record['after_in_sample']['ece']:.4f} (cross-fitted "
        f"{record['after_cross_fitted']['ece']:.4f}); stored in {path}; wrote {out}"
    )
    return 0


def run_evaluate(args: argparse.Namespace, command: str) -> int:
    from ganpso.classifier.evaluation import write_evaluation, write_predictions
    from ganpso.data import load_dataset
    from ganpso.device import describe_device, resolve_device
    from ganpso.inference import EmotionPredictor
    from ganpso.inference.predictor import default_model_path
    from ganpso.inference.scoring import score_faces
    from ganpso.metrics import format_metrics_table

    model = args.model or default_model_path()
    run_dir = model if model.is_dir() else None
    data, precision, seed = evaluation_data(run_dir, args.data, args.map, args.ignore)
    device = resolve_device(args.device)
    predictor = EmotionPredictor.from_pretrained(
        model, device=str(device), precision=precision, tta=not args.no_tta
    )
    dataset = load_dataset(data)
    split = args.split or ("PublicTest" if dataset.official_split else "all")
    out = args.out or run_dir or Path("runs") / time.strftime("evaluate-%Y%m%d-%H%M%S")
    if split == "PrivateTest" and (out / "metrics-PrivateTest.json").exists() and not args.force:
        raise ConfigError(
            f"{out}/metrics-PrivateTest.json: PrivateTest was already evaluated for this model; "
            "it is touched once, for the final report (pass --force to evaluate it again)"
        )
    faces = dataset.whole() if split == "all" else dataset[split]
    report, probs = score_faces(
        predictor,
        faces,
        split,
        source=data.source,
        split_note=split_note(dataset, data, split),
        command=command,
        device=describe_device(device),
        seed=seed,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = write_evaluation(report, out)
    write_predictions(out, faces.labels, probs.argmax(1), probs, split=split)
    print(format_metrics_table(report))
    print(f"{report['n']} faces, {report['faces']}; {report['split_note']}")
    print(f"macro measures over {len(report['macro_classes'])} classes present: "
          f"{', '.join(report['macro_classes'])}")  # fmt: skip
    print(f"wrote {path}")
    return 0


def evaluation_data(
    run_dir: Path | None,
    source: str | None,
    maps: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> tuple[Any, str, int]:
    """The data config (the run's, or the default), with --data, --map and --ignore applied."""
    from ganpso.data.config import DataConfig

    data, precision, seed = DataConfig(), "auto", 0
    if run_dir is not None and (run_dir / "config.yaml").exists():
        run_config = TrainConfig.from_dict(read_yaml(run_dir / "config.yaml"))
        data, precision, seed = run_config.data, run_config.precision, run_config.seed
    raw = data.__dict__ | {"unknown_classes": "error"}  # a class must map or be ignored
    if source:
        raw["source"] = source
    for item in maps:
        name, sep, emotion = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--map {item!r}: expected NAME=EMOTION, e.g. --map anger=angry")
        raw["class_map"] = {**raw["class_map"], name: emotion}
    raw["ignore_classes"] = [*raw["ignore_classes"], *ignore]
    return build_config(DataConfig, raw, "data"), precision, seed


def split_note(dataset: Any, data: Any, split: str) -> str:
    if dataset.official_split:
        return f"{split} of the source's official split" if split != "all" else "every split"
    if split == "all":
        return "every image of the source (it has no official split)"
    return (
        f"{split} of a seeded stratified split (seed {data.split_seed}, validation "
        f"{data.val_fraction:g}, test {data.test_fraction:g})"
    )
