"""Drawing faces from a trained generator: arrays, PNG files and the per-emotion grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganpso.emotions import EMOTIONS
from ganpso.gan.networks import Generator


def latents(
    count: int, z_dim: int, rng: torch.Generator, truncation: float | None = None
) -> torch.Tensor:
    """``(count, z_dim)`` standard normal latents; with ``truncation``, every entry beyond
    +-``truncation`` is drawn again until none is (the truncation trick: typical faces over
    diverse ones, the smaller the threshold)."""
    z = torch.randn(count, z_dim, generator=rng)
    if truncation is None:
        return z
    outside = z.abs() > truncation
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=rng)
        outside = z.abs() > truncation
    return z


@torch.no_grad()
def synthesize(
    generator: Generator,
    label: int,
    count: int,
    seed: int,
    batch_size: int = 500,
    truncation: float | None = None,
) -> np.ndarray:
    """``count`` faces of class ``label`` as uint8 ``(count, 48, 48)``; same seed, same faces.

    ``truncation``: latents truncated at that many standard deviations (see ``latents``).
    """
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    chunks = []
    for start in range(0, count, batch_size):
        size = min(batch_size, count - start)
        z = latents(size, generator.z_dim, rng, truncation).to(device)
        y = torch.full((size,), label, dtype=torch.long, device=device)
        chunks.append(to_uint8(generator(z, y)))
    return np.concatenate(chunks) if chunks else np.zeros((0, 48, 48), np.uint8)


def from_uint8(faces: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, H, W)`` -> ``(B, 1, H, W)`` in [-1, 1], G's range (undoes ``to_uint8``)."""
    return faces.float().div(127.5).sub(1).unsqueeze(1)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(B, 1, H, W)`` in [-1, 1] -> uint8 ``(B, H, W)``."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().squeeze(1).cpu().numpy()


@torch.no_grad()
def save_grid(generator: Generator, z: torch.Tensor, path: Path, scale: int = 2) -> None:
    """One row per emotion (FER2013 order), one column per fixed latent vector."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    rows = []
    for label in range(len(EMOTIONS)):
        y = torch.full((len(z),), label, dtype=torch.long, device=device)
        faces = to_uint8(generator(z.to(device), y))
        rows.append(np.concatenate(list(faces), axis=1))
    generator.train(was_training)
    grid = np.concatenate(rows, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(grid)
    image.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.Resampling.NEAREST).save(
        path
    )


def write_samples(faces: np.ndarray, out: Path, label: int, seed: int, fmt: str) -> Path:
    """Save ``faces`` as PNG files or one ``.npz`` (``fmt``), with a JSON record of the seed."""
    out.mkdir(parents=True, exist_ok=True)
    name = EMOTIONS[label]
    if fmt == "npz":
        target = out / f"{name}-seed{seed}.npz"
        np.savez_compressed(target, images=faces, labels=np.full(len(faces), label), seed=seed)
    else:
        target = out
        for i, face in enumerate(faces):
            Image.fromarray(face).save(out / f"{name}-seed{seed}-{i:05d}.png")
    record = {"class": name, "label": label, "count": len(faces), "seed": seed, "format": fmt}
    (out / f"{name}-seed{seed}.json").write_text(json.dumps(record, indent=2) + "\n")
    return target
