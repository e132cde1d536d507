"""Class-conditional GAN for 48x48 faces: networks, augmentation, loss, trainer, sampling and
its evaluation (``evaluation``: FID/KID, CAS, memorisation; imported on its own, not here)."""

from ganpso.gan.checkpoint import load_discriminator, load_generator
from ganpso.gan.networks import Discriminator, Generator
from ganpso.gan.sample import save_grid, synthesize, write_samples
from ganpso.gan.trainer import DivergenceError, GanTrainer

__all__ = [
    "Discriminator",
    "DivergenceError",
    "GanTrainer",
    "Generator",
    "load_discriminator",
    "load_generator",
    "save_grid",
    "synthesize",
    "write_samples",
]
