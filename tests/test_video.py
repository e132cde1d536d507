"""Video timelines: streamed frames, IoU tracking, smoothing, ``ganpso predict``'s CSV and plot."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from ganpso.cli import main
from ganpso.emotions import EMOTIONS
from ganpso.errors import DataError
from ganpso.inference import EmotionPredictor
from ganpso.inference.faces import Box
from ganpso.inference.tracking import FaceTracker, iou
from ganpso.inference.video import is_video_name, iter_sampled_frames, predict_video

FRAMES, WIDTH, HEIGHT = 20, 160, 120
FACE_SIDE = 100  # the astronaut's face region shrunk to this: Haar finds it in every frame
STEP = 2  # pixels the face moves right per frame


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint) -> EmotionPredictor:
    return EmotionPredictor.from_pretrained(tiny_checkpoint)


def write_video(path: Path, fourcc: str = "MJPG", frames: int = FRAMES) -> Path:
    """``frames`` frames of 160x120 at 10 fps: the astronaut's face moving right on grey."""
    gray = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)
    cx, cy, half = 222, 112, 100  # her face centre, and a margin Haar needs around it
    face = cv2.resize(gray[cy - half : cy + half, cx - half : cx + half], (FACE_SIDE, FACE_SIDE))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (WIDTH, HEIGHT))
    if not writer.isOpened():
        pytest.skip(f"this OpenCV build cannot write {fourcc} video")
    for index in range(frames):
        frame = np.full((HEIGHT, WIDTH), 100, np.uint8)
        x, y = 2 + STEP * index, 10
        frame[y : y + FACE_SIDE, x : x + FACE_SIDE] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.avi")


def read_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ---- tracking -------------------------------------------------------------------------------


def one_hot(*classes: int, k: int = 3) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[list(classes)]


def test_iou_known_values() -> None:
    a = Box(0, 0, 10, 10)
    assert iou(a, a) == 1.0
    assert iou(a, Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou(a, Box(10, 0, 10, 10)) == 0.0  # touching edges share no area
    assert iou(a, Box(30, 30, 5, 5)) == 0.0


def test_two_faces_crossing_keep_their_ids() -> None:
    tracker = FaceTracker(min_iou=0.3, max_missed=1, alpha=1.0)
    ids = []
    for step in range(12):  # A walks right along y=0, B left along y=30; they pass at step 6
        a, b = Box(8 * step, 0, 40, 40), Box(96 - 8 * step, 30, 40, 40)
        order = [b, a] if step % 2 else [a, b]  # the detector's order must not matter
        tracks = tracker.update(order, one_hot(0, 1))
        by_box = {track.box: track.id for track in tracks}
        ids.append((by_box[a], by_box[b]))
    assert set(ids) == {(0, 1)}


def test_a_face_that_disappears_ends_its_track_after_max_missed() -> None:
    tracker = FaceTracker(min_iou=0.3, max_missed=2, alpha=1.0)
    face = Box(10, 10, 40, 40)
    assert [t.id for t in tracker.update([face], one_hot(0))] == [0]
    for _ in range(2):  # gone for two samples: the track waits
        assert tracker.update([], one_hot()) == []
    assert [t.id for t in tracker.update([face], one_hot(0))] == [0]
    for _ in range(3):  # gone for three: the track ends, the face comes back as a new one
        tracker.update([], one_hot())
    assert tracker.tracks == []
    assert [t.id for t in tracker.update([face], one_hot(0))] == [1]


def test_a_new_face_far_away_gets_a_new_id_and_the_smoothing_is_an_ema() -> None:
    tracker = FaceTracker(min_iou=0.3, max_missed=2, alpha=0.25)
    tracker.update([Box(0, 0, 40, 40)], one_hot(0))
    tracks = tracker.update([Box(2, 0, 40, 40), Box(100, 0, 40, 40)], one_hot(1, 2))
    assert [t.id for t in tracks] == [0, 1]
    np.testing.assert_allclose(tracks[0].smoothed, [0.75, 0.25, 0.0])  # 0.25 new + 0.75 old
    np.testing.assert_allclose(tracks[1].smoothed, [0.0, 0.0, 1.0])  # a new track starts raw


# ---- frames and timelines -------------------------------------------------------------------


def test_video_suffixes_decide() -> None:
    assert all(is_video_name(f"a{s}") for s in [".mp4", ".AVI", ".mov", ".mkv", ".webm"])
    assert not is_video_name("a.jpg") and not is_video_name("a.zip")


def test_sampled_frames_are_every_nth_with_times(clip) -> None:
    frames = list(iter_sampled_frames(clip, every=3))
    assert [index for index, _, _ in frames] == list(range(0, FRAMES, 3))
    assert [time for _, time, _ in frames] == pytest.approx([i / 10 for i in range(0, FRAMES, 3)])
    assert all(gray.shape == (HEIGHT, WIDTH) and gray.dtype == np.uint8 for *_, gray in frames)


def test_one_moving_face_keeps_one_track(predictor, clip) -> None:
    rows = list(predict_video(predictor, clip, every=2, frames_per_batch=3))
    assert [row.frame for row in rows] == list(range(0, FRAMES, 2))  # one face per frame
    assert {row.track for row in rows} == {0}
    xs = [row.box.x for row in rows]
    assert xs == sorted(xs) and xs[-1] - xs[0] >= STEP * (FRAMES - 4)  # the box follows it
    for row in rows:
        assert row.probabilities.shape == (len(EMOTIONS),)
        assert row.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_smoothing_is_the_ema_of_the_raw_probabilities(predictor, clip) -> None:
    raw = [row.probabilities for row in predict_video(predictor, clip, every=4, alpha=1.0)]
    smooth = [row.probabilities for row in predict_video(predictor, clip, every=4, alpha=0.3)]
    expected = raw[0]
    for got, new in zip(smooth[1:], raw[1:], strict=True):
        expected = 0.3 * new + 0.7 * expected
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_unreadable_videos_are_one_line_data_errors(tmp_path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage, not a video")
    with pytest.raises(DataError, match=r"bad.mp4: not a readable video$"):
        list(iter_sampled_frames(bad))
    with pytest.raises(DataError, match="no such file"):
        list(iter_sampled_frames(tmp_path / "missing.mkv"))


# ---- ganpso predict VIDEO -------------------------------------------------------------------


def test_cli_video_timeline_csv_and_plot(tiny_checkpoint, clip, tmp_path, capsys) -> None:
    out = tmp_path / "out" / "timeline.csv"
    code = main(["predict", str(clip), "--model", str(tiny_checkpoint), "--out", str(out)])
    assert code == 0
    rows = read_rows(out.read_text())
    assert list(rows[0])[:8] == ["frame", "time_s", "track", "x", "y", "width", "height", "emotion"]
    assert list(rows[0])[8:] == [*EMOTIONS, "note"]
    assert [int(r["frame"]) for r in rows] == list(range(0, FRAMES, 5))  # --every 5 by default
    assert [float(r["time_s"]) for r in rows] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert {r["track"] for r in rows} == {"0"}
    for row in rows:
        probs = {c: float(row[c]) for c in EMOTIONS}
        assert row["emotion"] == max(probs, key=probs.get) and row["note"] == ""
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 1000
    assert "4 sampled frames, 1 face track(s)" in capsys.readouterr().err


def test_cli_video_every_and_stdout(tiny_checkpoint, clip, capsys) -> None:
    code = main(["predict", str(clip), "--model", str(tiny_checkpoint), "--every", "3"])
    rows = read_rows(capsys.readouterr().out)
    assert code == 0 and [int(r["frame"]) for r in rows] == list(range(0, FRAMES, 3))


def test_cli_video_without_faces_has_rows_with_a_note(tiny_checkpoint, tmp_path, capsys) -> None:
    blank = tmp_path / "blank.avi"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    for _ in range(6):
        writer.write(np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
    writer.release()
    code = main(["predict", str(blank), "--model", str(tiny_checkpoint), "--every", "2"])
    captured = capsys.readouterr()
    rows = read_rows(captured.out)
    assert code == 1 and [r["note"] for r in rows] == ["no face found"] * 3
    assert "no face found in 3 sampled frames" in captured.err


def test_cli_corrupt_video_is_exit_2_with_one_line(tiny_checkpoint, tmp_path, capfd) -> None:
    bad = tmp_path / "clip.mov"
    bad.write_bytes(b"\x00\x00\x00\x18ftypqt  not really")
    out = tmp_path / "timeline.csv"
    assert main(["predict", str(bad), "--model", str(tiny_checkpoint), "--out", str(out)]) == 2
    captured = capfd.readouterr()  # capfd: ffmpeg's own messages would reach the fd, not sys
    assert captured.err.strip().splitlines() == [f"error: {bad}: not a readable video"]
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--every", "0"], "--every 0: must be at least 1"),
        (["--smooth", "0"], "--smooth 0.0: must be in (0, 1]"),
        (["--json"], "--json: a video's timeline is CSV"),
        (["--explain", "maps"], "--explain: saliency maps are made for photos"),
    ],
)
def test_cli_video_options_are_checked_first(clip, options, message, capsys) -> None:
    assert main(["predict", str(clip), "--model", "missing.safetensors", *options]) == 2
    assert message in capsys.readouterr().err  # before the (missing) model is even loaded


def test_cli_mp4_by_suffix(tiny_checkpoint, tmp_path, capsys) -> None:
    clip = write_video(tmp_path / "clip.mp4", "mp4v", frames=6)
    assert main(["predict", str(clip), "--model", str(tiny_checkpoint), "--every", "5"]) == 0
    assert [r["track"] for r in read_rows(capsys.readouterr().out)] == ["0", "0"]


def test_faces_go_to_the_model_a_few_frames_at_a_time(predictor, clip, monkeypatch) -> None:
    sizes: list[int] = []
    real = predictor.predict_faces

    def recording(faces: np.ndarray) -> np.ndarray:
        sizes.append(len(faces))
        return real(faces)

    monkeypatch.setattr(predictor, "predict_faces", recording)
    rows = list(predict_video(predictor, clip, every=1, frames_per_batch=3))
    assert len(rows) == FRAMES and sum(sizes) == FRAMES
    assert max(sizes) <= 3  # one face per frame: never more than three frames' faces at once


def test_progress_bar_counts_all_frames_against_the_stated_total(clip, capsys) -> None:
    assert len(list(iter_sampled_frames(clip, every=7, progress=True))) == 3
    assert f"{FRAMES}/{FRAMES}" in capsys.readouterr().err
