"""``ganpso predict``, ``ganpso export --onnx`` and ``ganpso serve``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganpso.errors import ConfigError

if TYPE_CHECKING:
    from ganpso.data import Split


def add_inference_commands(commands: Any) -> None:
    model_help = "a .safetensors checkpoint, a run folder or an .onnx export (default: bundled)"
    predict = commands.add_parser(
        "predict",
        help="find faces in photos or a video and name their emotions",
        description="Predict the emotion of every face in photos of any size and colour. Inputs "
        "may be image files, folders (searched recursively) and zip archives. Bad files are "
        "listed and skipped; the others finish. Exit code: 0 when every image got a prediction, 1 "
        "when some had no face, 2 when any input could not be read (a missing or bad file, an "
        "empty folder, an image under 16x16 pixels). A video (.mp4, .avi, .mov, .mkv, .webm: "
        "told by its suffix) is given on its own: every N-th frame is read as a stream, faces are "
        "tracked across frames and smoothed, and a CSV gets one row per (frame, face); exit code "
        "0 when a face was found, 1 when none was, 2 when the video cannot be read.",
    )
    predict.add_argument(
        "images", nargs="+", type=Path, help="image files, folders or zips, or one video"
    )
    predict.add_argument("--model", type=Path, help=model_help)
    output = predict.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="JSON lines, one per image")
    output.add_argument("--csv", action="store_true", help="CSV, one row per face")
    predict.add_argument(
        "--no-detect",
        action="store_true",
        help="treat each image as an already-cropped face (FER2013-style), no detection. "
        "Without it, an image of at most 128 px a side and nearly square in which no face is "
        "detected is taken whole, as a tight crop",
    )
    predict.add_argument(
        "--min-face",
        type=int,
        metavar="PX",
        help="smallest face side to search for, in the photo's pixels (default: an eighth of the "
        "photo's longer side; lower finds smaller faces, e.g. in group photos, and is slower)",
    )
    predict.add_argument("--tta", action="store_true", help="average 10 crops (slower)")
    predict.add_argument("--batch-size", type=int, default=256, help="faces per forward pass")
    predict.add_argument("--device", default="cpu", help="cpu, cuda or auto (PyTorch models)")
    predict.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="photos: also write a saliency map per face as DIR/<image-stem>-face<k>.png (the "
        "face beside it under a heat map: where a grey patch over the 48x48 crop most lowers "
        "the predicted emotion's probability; about 120 extra model calls per face)",
    )
    video = predict.add_argument_group("video")
    video.add_argument(
        "--out",
        type=Path,
        metavar="CSV",
        help="the timeline CSV to write (one row per frame and face); a plot of each face's "
        "smoothed probabilities over time goes beside it as <CSV stem>.png. Default: the CSV "
        "on stdout and no plot",
    )
    video.add_argument(
        "--every",
        type=int,
        default=5,
        metavar="N",
        help="classify every N-th frame: 0, N, 2N, ... (default 5)",
    )
    video.add_argument(
        "--smooth",
        type=float,
        default=0.5,
        metavar="ALPHA",
        help="weight of the newest sample in each face's moving average of probabilities, in "
        "(0, 1]; 1 = no smoothing (default 0.5)",
    )
    video.add_argument(
        "--track-iou",
        type=float,
        default=0.3,
        metavar="IOU",
        help="a face continues a track when its box overlaps the track's last box by at least "
        "this intersection over union, else it starts a new track (default 0.3)",
    )
    video.add_argument(
        "--max-missed",
        type=int,
        default=2,
        metavar="K",
        help="sampled frames a track may go without its face before it ends; a face seen "
        "again later gets a new track id (default 2)",
    )

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
    export.add_argument(
        "--int8",
        action="store_true",
        help="write a static int8 model (onnxruntime), calibrated on --calibration-data's "
        "Training faces and refused if its PublicTest accuracy falls over 0.2 points below fp32",
    )
    export.add_argument(
        "--calibration-data",
        metavar="DATA",
        help="dataset for --int8: Training faces calibrate, PublicTest faces check",
    )

    serve = commands.add_parser(
        "serve",
        help="a local web page and JSON API: upload a photo, see face boxes and emotion bars",
        description="Serve the demo page on http://HOST:PORT/ and its JSON API (POST "
        "/api/predict with the image as the body or as the multipart field 'file'; GET /api/info; "
        "the OpenAPI description at /openapi.json), on uvicorn. 127.0.0.1 by default: only this "
        "machine can reach it; put a reverse proxy in front to serve a network. Ctrl+C stops it.",
    )
    serve.add_argument("--model", type=Path, help=model_help)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind; 0.0.0.0 serves the whole network"
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    serve.add_argument("--max-upload-mb", type=float, default=10, help="upload size limit in MB")
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=30,
        help="seconds an upload may take to arrive before it is refused with 408",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=100,
        help="open connections beyond which new requests get 503",
    )
    serve.add_argument(
        "--quiet", action="store_true", help="log warnings and errors only, not every request"
    )


def run_predict(args: argparse.Namespace, command: str) -> int:
    import csv
    import json

    from ganpso.inference import EmotionPredictor

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size}: must be at least 1")
    if args.min_face is not None and not 1 <= args.min_face <= 100_000:
        raise ConfigError(f"--min-face {args.min_face}: must be between 1 and 100000 pixels")
    video = check_video_options(args)
    predictor = EmotionPredictor.from_pretrained(
        args.model,
        device=args.device,
        tta=args.tta,
        batch_size=args.batch_size,
        min_face=args.min_face,
    )
    if video:
        return run_predict_video(args, predictor)
    writer = csv.writer(sys.stdout) if args.csv else None
    if writer:
        writer.writerow(
            ["source", "face", "x", "y", "width", "height", "emotion", *predictor.classes, "note"]
        )
    failed = faceless = 0
    progress = sys.stderr.isatty() and not (args.json or args.csv)
    for result in predictor.predict_files(args.images, not args.no_detect, progress):
        failed += result.error is not None
        faceless += result.error is None and not result.faces
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
        if args.json:
            print(json.dumps(result.to_dict()))
        elif writer:
            write_csv_rows(writer, result, predictor.classes)
        elif not result.error:
            print(format_prediction(result))
    if args.explain:
        from ganpso.inference.saliency import explain_files

        maps = list(explain_files(predictor, args.images, args.explain, not args.no_detect))
        print(f"wrote {len(maps)} saliency map(s) to {args.explain}", file=sys.stderr)
    if faceless:
        print(f"{faceless} image(s) with no face found", file=sys.stderr)
    if failed:
        print(f"{failed} input(s) could not be read (listed above)", file=sys.stderr)
    return 2 if failed else 1 if faceless else 0


def check_video_options(args: argparse.Namespace) -> bool:
    """Whether the input is a video; options that do not fit the input fail before any work."""
    from ganpso.inference.video import is_video_name

    if not any(is_video_name(path) for path in args.images):
        if args.out:
            raise ConfigError("--out: for a video's timeline; photos' --csv/--json go to stdout")
        return False
    if len(args.images) > 1:
        raise ConfigError(f"a video is predicted on its own, got {len(args.images)} inputs")
    if args.json:
        raise ConfigError("--json: a video's timeline is CSV (--out FILE, or stdout)")
    if args.explain:
        raise ConfigError("--explain: saliency maps are made for photos, not videos")
    if args.every < 1:
        raise ConfigError(f"--every {args.every}: must be at least 1")
    if not 0 < args.smooth <= 1:
        raise ConfigError(f"--smooth {args.smooth}: must be in (0, 1]; 1 means no smoothing")
    if not 0 < args.track_iou <= 1:
        raise ConfigError(f"--track-iou {args.track_iou}: must be in (0, 1]")
    if args.max_missed < 0:
        raise ConfigError(f"--max-missed {args.max_missed}: must be at least 0")
    return True


def run_predict_video(args: argparse.Namespace, predictor: Any) -> int:
    import csv
    import itertools

    from ganpso.inference.video import Timeline, csv_header, predict_video

    path = args.images[0]
    rows = predict_video(
        predictor,
        path,
        every=args.every,
        alpha=args.smooth,
        min_iou=args.track_iou,
        max_missed=args.max_missed,
        detect=not args.no_detect,
        progress=sys.stderr.isatty(),
    )
    first = next(rows)  # decodes frame 0: an unreadable video fails here, before any output
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    stream = args.out.open("w", newline="") if args.out else sys.stdout
    timeline = Timeline(predictor.classes)
    sampled: set[int] = set()
    try:
        writer = csv.writer(stream)
        writer.writerow(csv_header(predictor.classes))
        for row in itertools.chain([first], rows):
            writer.writerow(row.csv_fields(predictor.classes))
            timeline.add(row)
            sampled.add(row.frame)
    finally:
        if args.out:
            stream.close()
    tracks = len(timeline.tracks)
    if args.out:
        plot = timeline.plot(args.out.with_suffix(".png"), title=str(path))
        print(
            f"wrote {args.out} ({len(sampled)} sampled frames, {tracks} face track(s)) and {plot}",
            file=sys.stderr,
        )
    if not tracks:
        print(f"{path}: no face found in {len(sampled)} sampled frames", file=sys.stderr)
    return 0 if tracks else 1


def write_csv_rows(writer: Any, result: Any, classes: tuple[str, ...]) -> None:
    """One row per face; an image without a face, or unreadable, gets one row with a note."""
    if result.error or not result.faces:
        note = result.error or "no face found"
        writer.writerow([result.source, "", "", "", "", "", "", *([""] * len(classes)), note])
        return
    for index, face in enumerate(result.faces):
        box = face.box.as_list() if face.box else ["", "", "", ""]
        probs = [f"{face.probabilities[c]:.6f}" for c in classes]
        writer.writerow([result.source, index, *box, face.emotion, *probs, ""])


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

    if args.int8 and not args.calibration_data:
        raise ConfigError("--int8 needs --calibration-data (its Training faces calibrate)")
    model = args.model or default_model_path()
    checkpoint = model / "best.safetensors" if model.is_dir() else model
    faces = None
    if args.check_data:
        faces = load_split(args.check_data, "PublicTest").images[:512]
    if not args.int8:
        report = export_onnx(checkpoint, args.out, faces)
        print(
            f"wrote {args.out}: max |ONNX - PyTorch| logit difference "
            f"{report['max_abs_diff']:.2e} on {report['faces_checked']} "
            f"{'PublicTest' if faces is not None else 'random'} faces"
        )
        return 0
    return export_int8(checkpoint, args.out, args.calibration_data, faces)


def export_int8(checkpoint: Path, out: Path, data: str, check_faces: np.ndarray | None) -> int:
    import tempfile

    from ganpso.inference.export import export_onnx
    from ganpso.inference.quantize import CALIBRATION_FACES, quantize_export

    training, public = load_split(data, "Training"), load_split(data, "PublicTest")
    draw = np.random.default_rng(0).permutation(len(training.images))[:CALIBRATION_FACES]
    with tempfile.TemporaryDirectory() as folder:
        fp32 = Path(folder) / "fp32.onnx"
        export_onnx(checkpoint, fp32, check_faces)
        report = quantize_export(
            fp32, out, training.images[np.sort(draw)], (public.images, public.labels)
        )
    print(
        f"wrote {out}: int8, calibrated on {report['calibration_faces']} Training faces; "
        f"PublicTest accuracy {report['int8_accuracy']:.4f} (fp32 {report['fp32_accuracy']:.4f})"
    )
    return 0


def load_split(source: str, name: str) -> Split:
    from ganpso.data import load_dataset
    from ganpso.data.config import DataConfig

    return load_dataset(DataConfig(source=source))[name]


def run_serve(args: argparse.Namespace, command: str) -> int:
    import contextlib

    from ganpso.inference import EmotionPredictor
    from ganpso.inference.server import PredictionServer, ServerSettings

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be in 0..65535")
    if not 0 < args.max_upload_mb <= 1024:
        raise ConfigError(f"--max-upload-mb {args.max_upload_mb:g}: must be in (0, 1024]")
    if not 0 < args.body_timeout <= 3600:
        raise ConfigError(f"--body-timeout {args.body_timeout:g}: must be in (0, 3600] seconds")
    if args.max_connections < 1:
        raise ConfigError(f"--max-connections {args.max_connections}: must be at least 1")
    settings = ServerSettings(
        max_upload_bytes=max(1, int(args.max_upload_mb * 1024 * 1024)),
        body_timeout_s=args.body_timeout,
        max_connections=args.max_connections,
    )
    predictor = EmotionPredictor.from_pretrained(args.model)
    try:
        server = PredictionServer(
            predictor, args.host, args.port, settings, access_log=not args.quiet
        )
    except OSError as exc:
        raise ConfigError(f"{args.host}:{args.port}: cannot listen ({exc.strerror})") from None
    print(f"serving {predictor.model_path} on {server.url} (Ctrl+C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn shuts down gracefully first
        server.serve_forever()
    return 0
