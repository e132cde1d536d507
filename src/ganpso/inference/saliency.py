"""Why a face got its emotion: occlusion sensitivity maps.

A patch of the face's own mean grey slides over the 48x48 crop; every occluded copy goes
through the predictor's own preprocessing and model (``predict_faces``), so the map is the same
for a PyTorch checkpoint and its ONNX export. A pixel's saliency is the mean drop of the
predicted class's probability over the patches that cover it, scaled so the largest is 1::

    saliency(x, y) = mean_{patches P covering (x, y)} max(0, p_c(face) - p_c(face with P grey))

Example::

    from ganpso.inference.saliency import explain_face, overlay

    heat = explain_face(predictor, face)          # face: uint8 (48, 48) -> float32 (48, 48)
    Image.fromarray(overlay(face, heat)).save("why.png")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from ganpso.errors import DataError
from ganpso.inference.faces import read_photo
from ganpso.inference.inputs import iter_inputs
from ganpso.inference.predictor import EmotionPredictor

PATCH = 8  # side of the grey square: about an eye or a mouth corner on a 48x48 face
STRIDE = 4
SCALE = 4  # the PNG shows the 48x48 face at 192x192


def occlusion_map(
    predict: Callable[[np.ndarray], np.ndarray],
    face: np.ndarray,
    target: int | None = None,
    patch: int = PATCH,
    stride: int = STRIDE,
) -> np.ndarray:
    """Saliency ``(H, W)`` float32 in [0, 1] of uint8 ``face (H, W)`` for class ``target``.

    ``predict`` maps uint8 faces ``(N, H, W)`` to probabilities ``(N, K)``; ``target`` defaults
    to the class it predicts for ``face``. All zeros when no patch lowers the probability.
    """
    height, width = face.shape
    base = predict(face[None])[0]
    target = int(base.argmax()) if target is None else target
    # the last patch of each axis touches the border, so every pixel is covered
    tops = sorted({*range(0, height - patch + 1, stride), height - patch})
    lefts = sorted({*range(0, width - patch + 1, stride), width - patch})
    fill = np.uint8(round(float(face.mean())))  # no brightness change: only the content goes
    occluded = np.repeat(face[None], len(tops) * len(lefts), axis=0)  # (P, H, W)
    corners = [(top, left) for top in tops for left in lefts]
    for copy, (top, left) in zip(occluded, corners, strict=True):
        copy[top : top + patch, left : left + patch] = fill
    drops = np.maximum(0.0, base[target] - predict(occluded)[:, target])  # (P,)
    total = np.zeros((height, width), np.float64)
    covered = np.zeros((height, width), np.float64)
    for drop, (top, left) in zip(drops, corners, strict=True):
        total[top : top + patch, left : left + patch] += drop
        covered[top : top + patch, left : left + patch] += 1
    heat = total / covered
    peak = heat.max()
    return (heat / peak if peak > 0 else heat).astype(np.float32)


def explain_face(predictor: EmotionPredictor, face: np.ndarray, **options) -> np.ndarray:
    """Occlusion map ``(48, 48)`` float32 in [0, 1] of the predicted class for a uint8 crop.

    >>> heat = explain_face(EmotionPredictor.from_pretrained(), np.full((48, 48), 128, np.uint8))
    >>> heat.shape, heat.dtype.name
    ((48, 48), 'float32')
    """
    if face.ndim != 2 or face.dtype != np.uint8:
        raise ValueError(f"face: expected a uint8 (H, W) crop, got {face.dtype} {face.shape}")
    return occlusion_map(predictor.predict_faces, face, **options)


def overlay(face: np.ndarray, heat: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """RGB uint8 ``(H*scale, 2*W*scale, 3)``: the face, and the face under the heat map (jet)."""
    import cv2

    size = (face.shape[1] * scale, face.shape[0] * scale)
    gray = cv2.resize(face, size, interpolation=cv2.INTER_NEAREST)
    heat_big = cv2.resize(heat, size, interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(np.uint8(np.clip(heat_big, 0, 1) * 255), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    face_rgb = np.repeat(gray[..., None], 3, axis=2)
    blended = (0.55 * face_rgb + 0.45 * colour).astype(np.uint8)
    return np.concatenate([face_rgb, blended], axis=1)


def explain_files(
    predictor: EmotionPredictor, inputs: Iterable[str | Path], out: Path, detect: bool = True
) -> Iterator[Path]:
    """Write ``out/<image-stem>-face<k>.png`` per face of every readable input; yield the paths.

    Unreadable inputs are skipped (the prediction pass reports them); a stem seen before gets
    a ``-2``, ``-3``, ... suffix so that ``a/x.jpg`` and ``b/x.jpg`` both keep their maps.
    """
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    for source, read in iter_inputs(inputs):
        try:
            gray = read_photo(read(), source)
        except DataError:
            continue
        _, crops = predictor.face_crops(gray, detect)
        stem = Path(source.rsplit(":", 1)[-1]).stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        if seen[stem] > 1:
            stem = f"{stem}-{seen[stem]}"
        for index, face in enumerate(crops):
            path = out / f"{stem}-face{index}.png"
            Image.fromarray(overlay(face, explain_face(predictor, face))).save(path)
            yield path
