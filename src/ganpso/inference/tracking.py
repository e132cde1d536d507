"""Following faces from one sampled video frame to the next: greedy IoU matching plus smoothing.

Each new frame's boxes are matched to the live tracks' last boxes, best overlap first; a box
whose best remaining overlap is below ``min_iou`` starts a new track, and a track that finds no
box for more than ``max_missed`` samples in a row ends (a face that comes back later gets a new
id). Each track smooths its probabilities with an exponential moving average::

    smoothed_t = alpha * p_t + (1 - alpha) * smoothed_{t-1}      (alpha = 1: no smoothing)

Example::

    tracker = FaceTracker(min_iou=0.3, max_missed=2, alpha=0.5)
    for boxes, probs in frames:          # boxes: list[Box], probs: (len(boxes), K)
        for track in tracker.update(boxes, probs):
            print(track.id, track.box, track.smoothed.argmax())
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganpso.inference.faces import Box


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 when they do not touch."""
    width = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    height = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.width * a.height + b.width * b.height - inter)


@dataclass
class Track:
    id: int
    box: Box
    smoothed: np.ndarray  # (K,) float32, the moving average of the class probabilities
    missed: int = 0  # samples in a row without a matching box
    length: int = 1  # samples with a box


class FaceTracker:
    """Stable ids for faces over time; one ``update`` per sampled frame, in frame order."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 2, alpha: float = 0.5) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha {alpha}: must be in (0, 1]")
        self.min_iou, self.max_missed, self.alpha = min_iou, max_missed, alpha
        self.tracks: list[Track] = []  # the live ones
        self.next_id = 0

    def update(self, boxes: list[Box], probs: np.ndarray) -> list[Track]:
        """Match this frame's ``boxes`` (with probabilities ``(N, K)``); tracks in box order."""
        pairs = sorted(
            (
                (iou(track.box, box), t, b)
                for t, track in enumerate(self.tracks)
                for b, box in enumerate(boxes)
            ),
            key=lambda pair: -pair[0],
        )
        matched: dict[int, Track] = {}  # box index -> track
        used: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < self.min_iou:
                break
            if t in used or b in matched:
                continue
            track = self.tracks[t]
            track.box, track.missed, track.length = boxes[b], 0, track.length + 1
            track.smoothed = self.alpha * probs[b] + (1 - self.alpha) * track.smoothed
            matched[b] = track
            used.add(t)
        for t, track in enumerate(self.tracks):
            if t not in used:
                track.missed += 1
        self.tracks = [track for track in self.tracks if track.missed <= self.max_missed]
        for b, box in enumerate(boxes):
            if b not in matched:
                matched[b] = Track(self.next_id, box, np.asarray(probs[b], dtype=np.float32))
                self.next_id += 1
                self.tracks.append(matched[b])
        return [matched[b] for b in range(len(boxes))]
