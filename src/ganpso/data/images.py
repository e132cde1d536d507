"""Decoding one image of any format, size or colour into a 48x48 grayscale face."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganpso.emotions import IMAGE_SIZE
from ganpso.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def decode_image(data: bytes, name: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """Bytes of any PIL-readable image -> ``(size, size)`` uint8 grayscale.

    Non-square images are centre-cropped to a square first; ``name`` only labels errors.
    """
    return square_resize(open_grayscale(data, name), size)


def open_grayscale(data: bytes, name: str) -> Image.Image:
    """Decode fully (so truncation shows here) into mode L; problems are one-line ``DataError``s."""
    if not data:
        raise DataError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # truncated files fail here, not later
                return to_grayscale(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = (Image.MAX_IMAGE_PIXELS or 0) // 1_000_000
        raise DataError(f"{name}: image too large to decode safely (over {limit} MP)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise DataError(
            f"{name}: not a readable image (corrupt, truncated or not an image)"
        ) from None


def to_grayscale(image: Image.Image) -> Image.Image:
    """Any mode (L, RGB, RGBA, P, CMYK, I;16, LA, ...) -> mode L, alpha composited on white."""
    if image.mode == "L":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() or 1.0
        return Image.fromarray((array / peak * 255).round().astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    return image.convert("L")


def square_resize(image: Image.Image, size: int) -> np.ndarray:
    width, height = image.size
    if (width, height) != (size, size):
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8)
