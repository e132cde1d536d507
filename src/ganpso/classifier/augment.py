"""Augmentation and test-time views, in torch on the batch's device.

Images travel as uint8 ``(B, 48, 48)`` and become normalised float ``(B, 1, crop, crop)`` here,
the only place where pixels are scaled, so training, evaluation and inference agree.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ganpso.classifier.config import AugmentConfig

PIXEL_MEAN = 0.5  # of pixel / 255 over FER2013 Training, rounded
PIXEL_STD = 0.25  # likewise


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, H, W)`` -> float ``(B, 1, H, W)`` with roughly zero mean and unit variance."""
    return ((images.float() / 255.0 - PIXEL_MEAN) / PIXEL_STD).unsqueeze(1)


def random_crop(images: torch.Tensor, crop: int, generator: torch.Generator) -> torch.Tensor:
    """Crop each image of ``(B, H, W)`` at its own random offset -> ``(B, crop, crop)``."""
    batch, height, width = images.shape
    device = images.device
    top = torch.randint(0, height - crop + 1, (batch,), generator=generator, device=device)
    left = torch.randint(0, width - crop + 1, (batch,), generator=generator, device=device)
    offsets = torch.arange(crop, device=device)
    rows = (top[:, None] + offsets)[:, :, None]  # (B, crop, 1)
    cols = (left[:, None] + offsets)[:, None, :]  # (B, 1, crop)
    return images[torch.arange(batch, device=device)[:, None, None], rows, cols]


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None], images.flip(-1), images)


def random_erase(
    images: torch.Tensor, prob: float, max_side: int, generator: torch.Generator
) -> torch.Tensor:
    """Zero one random square (side 4..max_side) in each image with probability ``prob``.

    Works on normalised ``(B, 1, H, W)``: zero is the mean grey, not black.
    """
    batch, _, height, width = images.shape
    device = images.device
    erase = torch.rand(batch, generator=generator, device=device) < prob
    side = torch.randint(4, max_side + 1, (batch,), generator=generator, device=device)
    top = torch.randint(0, height, (batch,), generator=generator, device=device)
    left = torch.randint(0, width, (batch,), generator=generator, device=device)
    rows = torch.arange(height, device=device)[None, :]
    cols = torch.arange(width, device=device)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + side)[:, None])  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + side)[:, None])  # (B, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & erase[:, None, None]
    return images.masked_fill(mask[:, None], 0.0)


def random_affine(
    images: torch.Tensor, rotate_deg: float, scale: float, generator: torch.Generator
) -> torch.Tensor:
    """Rotate each image of ``(B, H, W)`` about its centre and zoom it, bilinearly.

    Angle uniform in ``+-rotate_deg`` (positive turns the face counter-clockwise on screen),
    zoom uniform in ``1 +- scale`` (above 1 the face grows). Pixels from outside the image
    repeat its border, so no black corners teach the model an edge that real faces lack.
    Returns float ``(B, H, W)`` on the pixel scale of the input.
    """
    batch, height, width = images.shape
    device = images.device
    uniform = torch.rand(2, batch, generator=generator, device=device) * 2 - 1
    angle = uniform[0] * math.radians(rotate_deg)
    zoom = 1 + uniform[1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    zero = torch.zeros_like(cos)
    # affine_grid maps each output pixel to where it samples the input: the inverse transform
    theta = torch.stack(
        [torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, [batch, 1, height, width], align_corners=False)
    warped = F.grid_sample(
        images.float()[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return warped[:, 0]


def augment_batch(
    images: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """uint8 ``(B, 48, 48)`` -> augmented, normalised float ``(B, 1, crop, crop)``."""
    if config.rotate_deg > 0 or config.scale > 0:
        images = random_affine(images, config.rotate_deg, config.scale, generator)
    images = random_crop(images, config.crop, generator)
    if config.flip:
        images = random_flip(images, generator)
    batch = normalize(images)
    if config.erase_prob > 0:
        batch = random_erase(batch, config.erase_prob, config.erase_max, generator)
    return batch


def draw_rng(generator: torch.Generator) -> np.random.Generator:
    """A NumPy generator seeded from ``generator`` (for draws torch has no sampler for, such as
    Beta), so a resumed run that restores ``generator`` repeats them."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))


def mix_batch(
    batch: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """mixup: ``lam * batch + (1 - lam) * batch[partner]`` with lam ~ Beta(alpha, alpha).

    Returns the mixed batch, the partner indices and lam; the loss mixes the two targets with
    the same lam. Every draw comes from ``generator``, so a resumed run repeats it.
    """
    lam = float(draw_rng(generator).beta(alpha, alpha))
    partner = torch.randperm(batch.shape[0], generator=generator).to(batch.device)
    return lam * batch + (1.0 - lam) * batch[partner], partner, lam


def cut_mix_batch(
    batch: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix: a rectangle of each image replaced by the same rectangle of its partner.

    The rectangle covers about ``1 - lam`` of the image, lam ~ Beta(alpha, alpha), centred at
    random and clipped to the image; the returned lam is the share the image keeps after
    clipping, so the loss weighs the two targets by the pixels each one shows. Every draw comes
    from ``generator``, so a resumed run repeats it.
    """
    height, width = batch.shape[-2:]
    rng = draw_rng(generator)
    cut = math.sqrt(1.0 - float(rng.beta(alpha, alpha)))
    centre_y, centre_x = int(rng.integers(height)), int(rng.integers(width))
    half_h, half_w = int(height * cut) // 2, int(width * cut) // 2
    top, bottom = max(centre_y - half_h, 0), min(centre_y + half_h, height)
    left, right = max(centre_x - half_w, 0), min(centre_x + half_w, width)
    partner = torch.randperm(batch.shape[0], generator=generator).to(batch.device)
    mixed = batch.clone()
    mixed[..., top:bottom, left:right] = batch[partner][..., top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    return mixed, partner, lam


def eval_views(
    images: torch.Tensor, crop: int, tta: bool, offsets: list[tuple[int, int]] | None = None
) -> list[torch.Tensor]:
    """Deterministic views whose predictions are averaged at evaluation.

    Without TTA: the centre crop and its mirror. With TTA: the centre and four corner crops,
    each with its mirror (ten views). ``offsets`` (top, left) replace those crops, each still
    with its mirror (``benchmarks/tta_views.py`` measures other sets).
    """
    if offsets is None:
        height, width = images.shape[-2:]
        margin_y, margin_x = height - crop, width - crop
        offsets = [(margin_y // 2, margin_x // 2)]
        if tta:
            offsets += [(0, 0), (0, margin_x), (margin_y, 0), (margin_y, margin_x)]
    batch = normalize(images)
    views = []
    for top, left in offsets:
        view = batch[:, :, top : top + crop, left : left + crop]
        views += [view, view.flip(-1)]
    return views
