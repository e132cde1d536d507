"""Emotion predictions for photos: find the faces, crop them as in training, classify them.

Example::

    from ganpso.inference import EmotionPredictor

    predictor = EmotionPredictor.from_pretrained()  # the model bundled with the package
    for result in predictor.predict_files(["photo.jpg", "folder/"]):
        for face in result.faces:
            print(result.source, face.box, face.emotion, face.probabilities[face.emotion])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ganpso.classifier.checkpoint import Preprocessing
from ganpso.errors import CheckpointError, DataError
from ganpso.inference.faces import (
    Box,
    centre_square,
    crop_face,
    detect_faces,
    read_photo,
    whole_image_face,
)
from ganpso.inference.inputs import iter_inputs
from ganpso.inference.runtime import Engine, load_model

DEFAULT_MODEL = "fer2013-vgg_small.safetensors"
# Margin added around the Haar box on each side, as a fraction of its side: none, since small
# margins either way scored alike (benchmarks/face_margin.py measures it).
DEFAULT_FACE_MARGIN = 0.0


@dataclass(frozen=True)
class FacePrediction:
    box: Box | None  # None when the whole image was taken as the face (--no-detect)
    emotion: str
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": self.box.as_list() if self.box else None,
            "emotion": self.emotion,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
        }


@dataclass
class ImagePrediction:
    source: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None  # one line when the file could not be used
    size: tuple[int, int] | None = None  # (width, height) of the photo

    @property
    def message(self) -> str:
        if self.error:
            return self.error
        return "no face found" if not self.faces else f"{len(self.faces)} face(s)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "size": list(self.size) if self.size else None,
            "faces": [face.to_dict() for face in self.faces],
            "error": self.error,
        }


def default_model_path() -> Path:
    return Path(str(resources.files("ganpso.inference") / "weights" / DEFAULT_MODEL))


# A tight crop holds too little context for the Haar detector; an image this small and nearly
# square is taken as the face itself when nothing is detected in it
FACE_SIZED_MAX_SIDE = 128
FACE_SIZED_ASPECT = (0.75, 1.34)


def is_face_sized(gray: np.ndarray) -> bool:
    height, width = gray.shape
    low, high = FACE_SIZED_ASPECT
    return max(height, width) <= FACE_SIZED_MAX_SIDE and low <= width / height <= high


def face_views(faces: np.ndarray, preprocessing: Preprocessing, tta: bool) -> np.ndarray:
    """uint8 ``(N, S, S)`` -> normalised views ``(V, N, 1, crop, crop)`` float32.

    The views of ``ganpso.classifier.augment.eval_views``: the centre crop and its mirror, plus
    the four corner crops and mirrors with ``tta``.
    """
    size, crop = faces.shape[-1], preprocessing.crop
    scaled = (faces.astype(np.float32) / 255.0 - preprocessing.pixel_mean) / preprocessing.pixel_std
    margin = size - crop
    offsets = [(margin // 2, margin // 2)]
    if tta:
        offsets += [(0, 0), (0, margin), (margin, 0), (margin, margin)]
    views = []
    for top, left in offsets:
        view = scaled[:, None, top : top + crop, left : left + crop]
        views += [view, view[..., ::-1]]
    return np.ascontiguousarray(np.stack(views))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class EmotionPredictor:
    """A classifier plus the face pipeline that feeds it.

    ``engine`` maps normalised crops to logits (PyTorch or onnxruntime, see ``runtime``).
    """

    def __init__(
        self,
        engine: Engine,
        classes: tuple[str, ...],
        preprocessing: Preprocessing,
        *,
        tta: bool = False,
        face_margin: float = DEFAULT_FACE_MARGIN,
        batch_size: int = 256,
        model_path: Path | None = None,
        temperature: float = 1.0,
        min_face: int | None = None,
    ) -> None:
        self.engine, self.classes, self.preprocessing = engine, classes, preprocessing
        self.tta, self.face_margin, self.batch_size = tta, face_margin, batch_size
        # the smallest face side searched for, in photo pixels; None: an eighth of the longer side
        self.min_face = min_face
        self.model_path = model_path
        # logits are divided by it before the softmax (``ganpso calibrate`` fits it)
        self.temperature = temperature

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        **options: Any,
    ) -> EmotionPredictor:
        """Load a ``.safetensors`` checkpoint, a run folder or an ``.onnx`` export.

        ``path=None`` loads the model bundled with the package (see its MODEL_CARD.md).
        """
        loaded = load_model(Path(path) if path else default_model_path(), device, precision)
        temperature = loaded.header.get("extra", {}).get("temperature", 1.0)
        if not isinstance(temperature, int | float) or not 0.01 <= temperature <= 100:
            raise CheckpointError(f"{loaded.path}: header temperature {temperature!r} is invalid")
        options.setdefault("temperature", float(temperature))
        return cls(
            loaded.engine,
            loaded.classes,
            loaded.preprocessing,
            model_path=loaded.path,
            **options,
        )

    def predict_faces(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, K)`` for uint8 face crops ``(N, 48, 48)``, averaged over views."""
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        scaled = (logits / self.temperature for logits in self.view_logits(faces))
        chunks = [softmax(batch).mean(axis=0) for batch in scaled]
        return np.concatenate(chunks).astype(np.float32)

    def view_logits(self, faces: np.ndarray) -> Iterator[np.ndarray]:
        """The engine's logits ``(V, B, K)`` for each batch of faces, every view it averages."""
        for start in range(0, len(faces), self.batch_size):
            views = face_views(faces[start : start + self.batch_size], self.preprocessing, self.tta)
            count, batch = views.shape[:2]
            logits = self.engine(views.reshape(count * batch, *views.shape[2:]))
            yield logits.reshape(count, batch, -1)

    def face_crops(self, gray: np.ndarray, detect: bool) -> tuple[list[Box | None], np.ndarray]:
        size = self.preprocessing.image_size
        if not detect:
            return [None], whole_image_face(gray, size)[None]
        boxes = detect_faces(gray, self.min_face)
        if not boxes and is_face_sized(gray):
            return [centre_square(gray)], whole_image_face(gray, size)[None]
        crops = [crop_face(gray, box, self.face_margin, size) for box in boxes]
        return list(boxes), np.stack(crops) if crops else np.zeros((0, size, size), np.uint8)

    def predict_image(
        self, data: bytes, source: str = "<image>", detect: bool = True
    ) -> ImagePrediction:
        """One photo's bytes -> ``ImagePrediction``; an unreadable file raises ``DataError``."""
        gray = read_photo(data, source)
        boxes, crops = self.face_crops(gray, detect)
        result = ImagePrediction(source, size=(gray.shape[1], gray.shape[0]))
        result.faces = self.label_faces(boxes, self.predict_faces(crops))
        return result

    def label_faces(self, boxes: list[Box | None], probs: np.ndarray) -> list[FacePrediction]:
        return [
            FacePrediction(
                box,
                self.classes[int(row.argmax())],
                dict(zip(self.classes, map(float, row), strict=True)),
            )
            for box, row in zip(boxes, probs, strict=True)
        ]

    def predict_files(
        self, inputs: Iterable[str | Path], detect: bool = True, progress: bool = False
    ) -> Iterator[ImagePrediction]:
        """Predictions for files, folders and zips, in input order; bad files carry ``error``.

        Faces from several photos are classified together in batches of ``batch_size``.
        """
        pending: list[tuple[ImagePrediction, list[Box | None], np.ndarray]] = []
        pending_faces = 0
        items = iter_inputs(inputs)
        if progress:
            items = tqdm(items, unit="image", desc="predict")
        for source, read in items:
            try:
                gray = read_photo(read(), source)
            except DataError as exc:
                pending.append((ImagePrediction(source, error=str(exc)), [], np.zeros(0)))
                continue
            boxes, crops = self.face_crops(gray, detect)
            pending.append((ImagePrediction(source, size=gray.shape[::-1]), boxes, crops))
            pending_faces += len(crops)
            if pending_faces >= self.batch_size:
                yield from self.finish(pending)
                pending, pending_faces = [], 0
        yield from self.finish(pending)

    def finish(
        self, pending: list[tuple[ImagePrediction, list[Box | None], np.ndarray]]
    ) -> Iterator[ImagePrediction]:
        crops = [crops for result, _, crops in pending if not result.error and len(crops)]
        probs = self.predict_faces(np.concatenate(crops)) if crops else np.zeros((0, 0))
        start = 0
        for result, boxes, _ in pending:
            if not result.error:
                result.faces = self.label_faces(boxes, probs[start : start + len(boxes)])
                start += len(boxes)
            yield result
