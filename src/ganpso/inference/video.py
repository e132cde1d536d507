"""Emotion timelines for videos: sample frames as a stream, find and track faces, smooth per face.

Frames are read one at a time with OpenCV and dropped once their faces are cropped; faces of at
most ``frames_per_batch`` sampled frames are classified together, so memory stays flat in the
length of the video (the timeline kept for the plot holds K numbers per face and sample).

Example::

    from ganpso.inference import EmotionPredictor
    from ganpso.inference.video import predict_video

    predictor = EmotionPredictor.from_pretrained()
    for row in predict_video(predictor, "clip.mp4", every=5):
        print(row.frame, row.time, row.track, row.emotion(predictor.classes))
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ganpso.errors import DataError
from ganpso.inference.faces import Box
from ganpso.inference.predictor import EmotionPredictor
from ganpso.inference.tracking import FaceTracker

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
FRAMES_PER_BATCH = 4  # sampled frames whose faces go through the model together
MAX_PLOT_TRACKS = 6  # the plot shows the longest tracks; the CSV has them all


def is_video_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoRow:
    """One face in one sampled frame, or a sampled frame without a face (``track`` None)."""

    frame: int
    time: float  # seconds from the start; nan when the file states no frame rate
    track: int | None = None
    box: Box | None = None
    probabilities: np.ndarray | None = None  # (K,) smoothed over the track

    def emotion(self, classes: tuple[str, ...]) -> str:
        return "" if self.probabilities is None else classes[int(self.probabilities.argmax())]

    def csv_fields(self, classes: tuple[str, ...]) -> list[str | int]:
        """The row under ``csv_header(classes)``."""
        time = "" if math.isnan(self.time) else f"{self.time:.3f}"
        if self.track is None or self.probabilities is None:
            blank = [""] * (6 + len(classes))  # track, box, emotion, probabilities
            return [self.frame, time, *blank, "no face found"]
        box = self.box.as_list() if self.box else ["", "", "", ""]
        probs = [f"{p:.6f}" for p in self.probabilities]
        return [self.frame, time, self.track, *box, self.emotion(classes), *probs, ""]


def csv_header(classes: tuple[str, ...]) -> list[str]:
    return ["frame", "time_s", "track", "x", "y", "width", "height", "emotion", *classes, "note"]


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Mute file descriptor 2 while OpenCV probes a file.

    ffmpeg ("moov atom not found") and OpenCV's own log write there directly, and would
    precede the one-line error for a bad video; Python's ``sys.stderr`` is left alone.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def open_video(path: Path):  # -> cv2.VideoCapture
    """A capture that has grabbed frame 0, or a one-line ``DataError``."""
    import cv2

    if not path.is_file():
        raise DataError(f"{path}: no such file or directory")
    # ffmpeg reads every container named in VIDEO_SUFFIXES; other backends would try e.g. an
    # image-sequence reader on a bad file
    backend = cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY
    with native_stderr_silenced():
        capture = cv2.VideoCapture(str(path), backend)
        readable = capture.isOpened() and capture.grab()
    if not readable:
        capture.release()
        raise DataError(f"{path}: not a readable video")
    return capture


def iter_sampled_frames(
    path: str | Path, every: int = 5, progress: bool = False
) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(frame index, seconds, gray (H, W) uint8)`` for frames 0, every, 2 * every, ...

    Skipped frames are only grabbed, not converted. The progress bar counts all frames, with
    the total from the container when it states one.
    """
    import cv2

    if every < 1:
        raise ValueError(f"every {every}: must be at least 1")
    path = Path(path)
    capture = open_video(path)
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    bar = tqdm(
        total=count if count > 0 else None,
        unit="frame",
        desc=path.name,
        disable=not progress,
        file=sys.stderr,
    )
    try:
        index, grabbed = 0, True  # open_video grabbed frame 0
        while grabbed:
            if index % every == 0:
                ok, frame = capture.retrieve()
                if not ok:
                    break
                time = index / fps if fps and fps > 0 else float("nan")
                if frame.ndim == 3:
                    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                yield index, time, frame
            index += 1
            bar.update()
            grabbed = capture.grab()
    finally:
        bar.close()
        capture.release()


def predict_video(
    predictor: EmotionPredictor,
    path: str | Path,
    *,
    every: int = 5,
    alpha: float = 0.5,
    min_iou: float = 0.3,
    max_missed: int = 2,
    detect: bool = True,
    frames_per_batch: int = FRAMES_PER_BATCH,
    progress: bool = False,
) -> Iterator[VideoRow]:
    """Rows in frame order: one per (sampled frame, face), one per sampled frame without a face.

    ``alpha`` weighs the newest sample in each track's moving average (1: no smoothing);
    ``min_iou`` and ``max_missed`` govern the tracking (see ``ganpso.inference.tracking``).
    An unreadable video raises ``DataError`` before any row.
    """
    tracker = FaceTracker(min_iou, max_missed, alpha)
    pending: list[tuple[int, float, list[Box], np.ndarray]] = []
    for index, time, gray in iter_sampled_frames(path, every, progress):
        boxes, crops = predictor.face_crops(gray, detect)
        # no detection: the whole frame is the one face, tracked as the frame's own box
        whole = Box(0, 0, gray.shape[1], gray.shape[0])
        pending.append((index, time, [box or whole for box in boxes], crops))
        if len(pending) >= frames_per_batch:
            yield from track_batch(predictor, tracker, pending, detect)
            pending = []
    yield from track_batch(predictor, tracker, pending, detect)


def track_batch(
    predictor: EmotionPredictor,
    tracker: FaceTracker,
    pending: list[tuple[int, float, list[Box], np.ndarray]],
    detect: bool,
) -> Iterator[VideoRow]:
    crops = [crops for *_, crops in pending if len(crops)]
    probs = predictor.predict_faces(np.concatenate(crops)) if crops else np.zeros((0, 0))
    start = 0
    for index, time, boxes, _ in pending:
        tracks = tracker.update(boxes, probs[start : start + len(boxes)])
        start += len(boxes)
        if not tracks:
            yield VideoRow(index, time)
        for track in tracks:
            box = track.box if detect else None
            yield VideoRow(index, time, track.id, box, track.smoothed.copy())


@dataclass
class Timeline:
    """The smoothed probabilities of each track over time, kept for the plot."""

    classes: tuple[str, ...]
    tracks: dict[int, tuple[list[float], list[np.ndarray]]] = field(default_factory=dict)
    seconds: bool = True  # False when the video states no frame rate: frame numbers instead
    end: float = 0.0  # the last sampled time (or frame), faces or not

    def add(self, row: VideoRow) -> None:
        self.seconds = self.seconds and not math.isnan(row.time)
        when = row.time if self.seconds else row.frame
        self.end = max(self.end, when)
        if row.track is None or row.probabilities is None:
            return
        times, probs = self.tracks.setdefault(row.track, ([], []))
        times.append(when)
        probs.append(row.probabilities.astype(np.float32))

    def plot(self, path: Path, title: str = "") -> Path:
        """Stacked smoothed probabilities over time, one panel per track (the longest ones)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        longest = sorted(self.tracks, key=lambda t: -len(self.tracks[t][0]))[:MAX_PLOT_TRACKS]
        shown = sorted(longest)
        panels = max(1, len(shown))
        figure, axes = plt.subplots(
            panels,
            1,
            figsize=(9, 1.0 + 1.6 * panels),
            sharex=True,
            squeeze=False,
            layout="constrained",
        )
        colours = plt.get_cmap("tab10").colors
        for axis, track in zip(axes[:, 0], shown, strict=False):
            times, probs = self.tracks[track]
            stacked = np.stack(probs, axis=1)  # (K, T)
            if len(times) == 1:  # a single sample: draw it as a thin bar rather than nothing
                times, stacked = [times[0], times[0] + 1e-3], np.repeat(stacked, 2, axis=1)
            axis.stackplot(times, stacked, colors=colours[: len(self.classes)], linewidth=0)
            axis.set_ylim(0, 1)
            axis.set_ylabel(f"track {track}")
        if not shown:
            axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours[: len(self.classes)]]
        figure.legend(handles, self.classes, loc="outside upper center", ncol=len(self.classes))
        axes[-1, 0].set_xlabel("time (s)" if self.seconds else "frame")
        axes[-1, 0].set_xlim(0, max(self.end, 1e-3))  # the whole video, not just the faces
        hidden = len(self.tracks) - len(shown)
        note = f" ({hidden} shorter tracks only in the CSV)" if hidden > 0 else ""
        axes[0, 0].set_title(f"{title}: smoothed probabilities per face track{note}", fontsize=9)
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path
