"""Photos in, 48x48 grayscale face crops out: reading any image, finding faces, cropping them.

Faces are found with the frontal-face Haar cascade that ships inside ``opencv-python-headless``
(< 5: version 5 dropped the cascade files), so nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ganpso.data.images import open_grayscale
from ganpso.emotions import IMAGE_SIZE
from ganpso.errors import DataError

# Detection runs on a shrunk copy of the photo: the cascade's time grows with the pixel count,
# and on large photos its false positives grow too. The copy is shrunk until the smallest face
# asked for fills the cascade's 24-pixel window, and at least to this longest side.
MAX_DETECTION_SIDE = 800
CASCADE_WINDOW = 24
# Unless told otherwise, faces smaller than this fraction of the photo's longer side are not
# searched for (a 512-pixel photo: faces from 64 pixels; ``min_face`` lowers it).
MIN_FACE_FRACTION = 0.125
CASCADE_FILE = "haarcascade_frontalface_default.xml"
# The cascade's pyramid step and the overlapping hits a face needs. Coarser steps or fewer
# neighbours are faster but find fewer faces or worse boxes on the face-margin benchmark's
# PublicTest faces (``benchmarks/detector_settings.py``).
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 6


@dataclass(frozen=True)
class Box:
    """A face box in the original photo's pixel coordinates."""

    x: int
    y: int
    width: int
    height: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]


MIN_PHOTO_SIDE = 16  # smaller images hold too few pixels for a face (FER2013's are 48)


def read_photo(data: bytes, name: str) -> np.ndarray:
    """Bytes of any PIL-readable photo -> grayscale uint8 ``(H, W)``; ``name`` labels errors."""
    gray = np.asarray(open_grayscale(data, name), dtype=np.uint8)
    if min(gray.shape) < MIN_PHOTO_SIDE:
        height, width = gray.shape
        raise DataError(
            f"{name}: image is {width}x{height} pixels; a face needs at least "
            f"{MIN_PHOTO_SIDE}x{MIN_PHOTO_SIDE}"
        )
    return gray


@lru_cache(maxsize=4)
def face_cascade(name: str = CASCADE_FILE):  # -> cv2.CascadeClassifier
    """One of the cascades in OpenCV's ``data/haarcascades`` folder, loaded once."""
    import cv2

    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise DataError(
            f"{path}: no such Haar cascade in OpenCV's data folder "
            "(opencv-python-headless<5 ships them)"
        )
    return cascade


def detect_faces(
    gray: np.ndarray,
    min_face: int | None = None,
    *,
    scale_factor: float = SCALE_FACTOR,
    min_neighbors: int = MIN_NEIGHBORS,
    cascade: str = CASCADE_FILE,
) -> list[Box]:
    """Frontal faces in a grayscale photo, largest first, in the photo's own coordinates.

    ``min_face``: the smallest face side, in the photo's pixels, to search for; None searches
    from ``MIN_FACE_FRACTION`` of the longer side. Smaller values find smaller faces, slower.
    ``cascade``: a file of OpenCV's ``data/haarcascades`` (the default judged best by
    ``benchmarks/detector_settings.py``).
    """
    import cv2

    scale = detection_scale(gray.shape, min_face)
    small = gray
    if scale < 1.0:
        size = (round(gray.shape[1] * scale), round(gray.shape[0] * scale))
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    found = face_cascade(cascade).detectMultiScale(
        cv2.equalizeHist(small),
        scaleFactor=scale_factor,
        minNeighbors=min_neighbors,
        minSize=(CASCADE_WINDOW, CASCADE_WINDOW),
    )
    boxes = [Box(*(round(v / scale) for v in face)) for face in np.asarray(found).reshape(-1, 4)]
    return sorted(boxes, key=lambda b: b.width * b.height, reverse=True)


def detection_scale(shape: tuple[int, ...], min_face: int | None) -> float:
    """How much the photo is shrunk for detection: ``min_face`` maps to the cascade's window."""
    longest = max(shape)
    if min_face is None:
        min_face = round(MIN_FACE_FRACTION * longest)
    scale = CASCADE_WINDOW / max(min_face, CASCADE_WINDOW)
    return min(scale, MAX_DETECTION_SIDE / longest)


def crop_face(
    gray: np.ndarray, box: Box, margin: float = 0.0, size: int = IMAGE_SIZE
) -> np.ndarray:
    """The square around ``box`` grown by ``margin`` per side, resized to ``(size, size)``.

    Parts of the square outside the photo are filled by replicating the border.
    """
    import cv2

    side = round(max(box.width, box.height) * (1 + 2 * margin))
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    pad = max(0, -left, -top, left + side - gray.shape[1], top + side - gray.shape[0])
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
    square = padded[top + pad : top + pad + side, left + pad : left + pad + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def centre_square(gray: np.ndarray) -> Box:
    """The centred square of the image's shorter side."""
    height, width = gray.shape
    side = min(height, width)
    return Box((width - side) // 2, (height - side) // 2, side, side)


def whole_image_face(gray: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """An already-cropped face (FER2013-style): centre square, resized."""
    return crop_face(gray, centre_square(gray), size=size)
