"""GAN weights in safetensors with a JSON header; the averaged generator alone for sampling."""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ganpso.checkpoint import check_shapes, read_header, write_checkpoint
from ganpso.config import build_config
from ganpso.emotions import EMOTIONS
from ganpso.errors import CheckpointError, ConfigError
from ganpso.gan.config import GanConfig
from ganpso.gan.networks import Discriminator, Generator, standing_statistics

GAN_FORMAT = "ganpso-gan/1"
GENERATOR_FORMAT = "ganpso-generator/1"


def _tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_gan_weights(
    path: Path, G: nn.Module, G_ema: nn.Module, D: nn.Module, header: dict[str, Any]
) -> None:
    tensors = {**_tensors("G", G), **_tensors("G_ema", G_ema), **_tensors("D", D)}
    write_checkpoint(path, tensors, GAN_FORMAT, header)


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
        "z_dim": config.z_dim,
        "width": config.g_width,
        "upsample": config.upsample,
        "classes": list(EMOTIONS),
        "step": step,
        "standing_stats_batches": standing_batches,
        "config": asdict(config),
    }
    write_generator(path, G_ema, header)
    return G_ema


def write_generator(path: Path, generator: Generator, header: dict[str, Any]) -> None:
    write_checkpoint(path, _tensors("G", generator), GENERATOR_FORMAT, header)


def load_generator(path: Path, device: str | torch.device = "cpu") -> tuple[Generator, dict]:
    """The averaged generator in eval mode and its header (z_dim, width, classes, step)."""
    if path.is_dir():
        path = path / "generator.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path}: generator checkpoint not found")
    header = read_header(path, GENERATOR_FORMAT)
    try:
        shape = build_config(
            GanConfig,
            {
                "z_dim": header["z_dim"],
                "g_width": header["width"],
                "upsample": header.get("upsample", "nearest"),  # the only one before it was named
            },
            "generator",
        )
        if len(header["classes"]) != len(EMOTIONS):
            raise ConfigError(f"classes: {len(header['classes'])}, expected {len(EMOTIONS)}")
        with torch.device("meta"):  # shapes only: no memory until they match the file
            check_shapes(path, Generator(shape.z_dim, shape.g_width, len(EMOTIONS)), "G.")
        generator = Generator(shape.z_dim, shape.g_width, len(EMOTIONS), upsample=shape.upsample)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{path}: generator header incomplete or invalid ({exc})") from None
    state = {k[2:]: v for k, v in _load(path).items() if k.startswith("G.")}
    _load_into(generator, state, path)
    return generator.to(device).eval(), header


def load_discriminator(path: Path, device: str | torch.device = "cpu") -> Discriminator:
    """The discriminator of a training checkpoint (``gan.safetensors``), in eval mode."""
    header = read_header(path, GAN_FORMAT)
    config = header.get("config") or {}
    try:
        width = build_config(GanConfig, {"d_width": config["d_width"]}, "gan").d_width
        spectral = bool(config["d_spectral_norm"])
        with torch.device("meta"):
            check_shapes(path, Discriminator(width, len(EMOTIONS), spectral), "D.")
        discriminator = Discriminator(width, len(EMOTIONS), spectral)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{path}: GAN header incomplete or invalid ({exc})") from None
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
