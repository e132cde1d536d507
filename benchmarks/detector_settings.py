"""Is the Haar cascade's default setting the right trade of speed against faces found?

Each setting (the cascade file, pyramid step ``scale_factor``, overlapping hits
``min_neighbors``) is judged on the
face-margin benchmark's PublicTest faces set in photo-like canvases: the fraction detected and
the accuracy of the bundled model on their crops (margin 0), and on the latency photo: the
detection's median milliseconds and the boxes it returns. PrivateTest is not read.

    python benchmarks/detector_settings.py --out results/inference/detector-settings.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from bench_inference import astronaut_png
from face_margin import photo_canvas
from ganpso.data import load_dataset
from ganpso.data.config import DataConfig
from ganpso.inference import EmotionPredictor, crop_face, detect_faces
from ganpso.inference.faces import CASCADE_FILE, MIN_NEIGHBORS, SCALE_FACTOR, read_photo
from machine import machine_facts

SCALE_FACTORS = (1.1, 1.15, 1.2)
MIN_NEIGHBORS_TRIED = (6, 4, 3)
# the other frontal-face cascades that ship with opencv-python-headless, at the default step
OTHER_CASCADES = (
    "haarcascade_frontalface_alt.xml",
    "haarcascade_frontalface_alt2.xml",
    "haarcascade_frontalface_alt_tree.xml",
)


def settings() -> list[dict]:
    """The default cascade over the step and neighbour grid, then the other cascades."""
    grid = [
        {"cascade": CASCADE_FILE, "scale_factor": step, "min_neighbors": neighbours}
        for step in SCALE_FACTORS
        for neighbours in MIN_NEIGHBORS_TRIED
    ]
    others = [
        {"cascade": name, "scale_factor": SCALE_FACTOR, "min_neighbors": neighbours}
        for name in OTHER_CASCADES
        for neighbours in MIN_NEIGHBORS_TRIED
    ]
    return grid + others


def detection_ms(gray: np.ndarray, setting: dict, repeats: int) -> float:
    detect_faces(gray, **setting)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        detect_faces(gray, **setting)
        times.append(1000 * (time.perf_counter() - began))
    return round(statistics.median(times), 2)


def judge(
    setting: dict,
    canvases: list[np.ndarray],
    labels: np.ndarray,
    predictor: EmotionPredictor,
    photo: np.ndarray,
    repeats: int,
) -> dict:
    found, crops = [], []
    for index, canvas in enumerate(canvases):
        boxes = detect_faces(canvas, **setting)
        if boxes:
            found.append(index)
            crops.append(crop_face(canvas, boxes[0]))
    accuracy = None  # a cascade that finds no face has no crops to judge
    if crops:
        predicted = predictor.predict_faces(np.stack(crops)).argmax(1)
        accuracy = round(float((predicted == labels[found]).mean()), 4)
    return {
        **setting,
        "detection_rate": round(len(found) / len(canvases), 4),
        "accuracy_on_detected": accuracy,
        "photo_detection_ms": detection_ms(photo, setting, repeats),
        "photo_boxes": [box.as_list() for box in detect_faces(photo, **setting)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--limit", type=int, default=1500, help="PublicTest faces to use")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument(
        "--out", type=Path, default=Path("results/inference/detector-settings.json")
    )
    args = parser.parse_args()

    split = load_dataset(DataConfig(source=args.data))["PublicTest"]
    canvases = [photo_canvas(face) for face in split.images[: args.limit]]
    labels = split.labels[: args.limit]
    predictor = EmotionPredictor.from_pretrained()
    photo = read_photo(astronaut_png(), "astronaut")
    rows = []
    for setting in settings():
        rows.append(judge(setting, canvases, labels, predictor, photo, args.repeats))
        print(rows[-1], flush=True)
    result = {
        "benchmark": "Haar cascade settings: faces found and accuracy against detection time",
        "faces": len(canvases),
        "default": {
            "cascade": CASCADE_FILE,
            "scale_factor": SCALE_FACTOR,
            "min_neighbors": MIN_NEIGHBORS,
        },
        "rows": rows,
        "machine": machine_facts(),
        "command": f"python benchmarks/detector_settings.py --limit {args.limit}",
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
