"""GAN weights in safetensors with a JSON header; the averaged generator alone for sampling."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

import ganpso
from ganpso.classifier.checkpoint import METADATA_KEY, atomic_write, read_header
from ganpso.config import GanConfig
from ganpso.emotions import EMOTIONS
from ganpso.errors import CheckpointError
from ganpso.gan.networks import Discriminator, Generator, standing_statistics

GAN_FORMAT = "ganpso-gan/1"
GENERATOR_FORMAT = "ganpso-generator/1"


def _tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_gan_weights(
    path: Path, G: nn.Module, G_ema: nn.Module, D: nn.Module, header: dict[str, Any]
) -> None:
    tensors = {**_tensors("G", G), **_tensors("G_ema", G_ema), **_tensors("D", D)}
    meta = {"format": GAN_FORMAT, "version": ganpso.__version__, **header}
    atomic_write(
        path, lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(meta)})
    )


def load_gan_weights(path: Path, G: nn.Module, G_ema: nn.Module, D: nn.Module) -> int:
    """Load all three networks; returns the step the weights were saved at."""
    header = read_header(path, GAN_FORMAT)
    state = _load(path)
    for prefix, module in (("G", G), ("G_ema", G_ema), ("D", D)):
        part = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        _load_into(module, part, path)
    return int(header["step"])


def save_generator(
    path: Path, G_ema: Generator, config: GanConfig, step: int, standing_batches: int = 0
) -> Generator:
    """Save the averaged generator alone, for sampling, and return what was saved: with
    standing batch-norm statistics from ``standing_batches`` batches (computed on a copy, so
    that training goes on unchanged)."""
    if standing_batches:
        G_ema = copy.deepcopy(G_ema)
        standing_statistics(G_ema, standing_batches, seed=config.seed)
    header = {
        "format": GENERATOR_FORMAT,
        "version": ganpso.__version__,
        "z_dim": config.z_dim,
        "width": config.g_width,
        "classes": list(EMOTIONS),
        "step": step,
        "standing_stats_batches": standing_batches,
        "config": asdict(config),
    }
    write_generator(path, G_ema, header)
    return G_ema


def write_generator(path: Path, generator: Generator, header: dict[str, Any]) -> None:
    tensors = _tensors("G", generator)
    atomic_write(
        path, lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(header)})
    )


def load_generator(path: Path, device: str | torch.device = "cpu") -> tuple[Generator, dict]:
    """The averaged generator in eval mode and its header (z_dim, width, classes, step)."""
    if path.is_dir():
        path = path / "generator.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path}: generator checkpoint not found")
    header = read_header(path, GENERATOR_FORMAT)
    try:
        generator = Generator(int(header["z_dim"]), int(header["width"]), len(header["classes"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: generator header incomplete ({exc})") from None
    state = {k[2:]: v for k, v in _load(path).items() if k.startswith("G.")}
    _load_into(generator, state, path)
    return generator.to(device).eval(), header


def load_discriminator(path: Path, device: str | torch.device = "cpu") -> Discriminator:
    """The discriminator of a training checkpoint (``gan.safetensors``), in eval mode."""
    header = read_header(path, GAN_FORMAT)
    config = header.get("config") or {}
    try:
        discriminator = Discriminator(
            int(config["d_width"]), len(EMOTIONS), bool(config["d_spectral_norm"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: GAN header incomplete ({exc})") from None
    state = {k[2:]: v for k, v in _load(path).items() if k.startswith("D.")}
    _load_into(discriminator, state, path)
    return discriminator.to(device).eval()


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: corrupt weights ({exc})") from None


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not match the network ({first})") from None
