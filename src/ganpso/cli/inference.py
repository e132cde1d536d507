"""``ganpso predict``, ``ganpso export --onnx`` and ``ganpso serve``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ganpso.errors import ConfigError


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
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
