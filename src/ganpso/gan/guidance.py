"""Classifier guidance: a frozen emotion classifier tells the generator which class it drew.

The discriminator's auxiliary head learns the classes from the GAN's own, few, steps; a
classifier trained in full on the same Training faces already knows them. Its cross-entropy on
the fakes, ``w * CE(f(crop(G(z, y))), y)``, is added to the generator's loss, so each fake must
carry the features that tell its class apart in real faces: what a classifier trained on fakes
needs (CAS). The adversarial loss keeps the fakes realistic and diverse; the guide alone would
draw class prototypes. The guide sees a random crop of each fake, mirrored half the time, as it
saw real faces in training, so a fake cannot satisfy it through one fixed pixel pattern. With
``blur_sigma`` it sees the fakes blurred, so fine detail that fools this classifier without
teaching another earns nothing.

The guide must be trained on Training only (the protocol: PublicTest chooses, PrivateTest
reports). Distances measured in the same classifier's features (FID/KID) flatter guided fakes;
CAS, a fresh classifier trained on fakes and tested on real faces, does not.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ganpso.classifier.checkpoint import load_classifier
from ganpso.device import autocast
from ganpso.emotions import EMOTIONS
from ganpso.errors import ConfigError

FACE_SIDE = 48


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images`` ``(B, 1, H, W)`` blurred by a Gaussian of ``sigma`` pixels, mirrored at the edges.

    Separable, truncated at 3 sigma as ``scipy.ndimage.gaussian_filter(mode="mirror")``.
    """
    radius = max(1, int(3 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    return F.conv2d(rows, kernel.view(1, 1, -1, 1))


class ClassifierGuide:
    def __init__(
        self,
        path: str | Path,
        device: torch.device,
        precision: str,
        generator: torch.Generator,
        blur_sigma: float = 0.0,
    ) -> None:
        checkpoint = load_classifier(path, device=device)
        if checkpoint.classes != EMOTIONS:
            raise ConfigError(
                f"{path}: the guide's classes {list(checkpoint.classes)} are not {list(EMOTIONS)}"
            )
        if checkpoint.preprocessing.image_size != FACE_SIDE:
            raise ConfigError(
                f"{path}: the guide expects {checkpoint.preprocessing.image_size}-pixel faces, "
                f"the GAN draws {FACE_SIDE}"
            )
        self.model = checkpoint.model.eval().requires_grad_(False)
        self.model.to(memory_format=torch.channels_last)
        self.preprocessing = checkpoint.preprocessing
        self.device, self.precision, self.generator = device, precision, generator
        self.blur_sigma = blur_sigma

    def views(self, fakes: torch.Tensor) -> torch.Tensor:
        """The guide's input: blurred if asked, one random crop per batch (mirrored per face)."""
        if self.blur_sigma:
            fakes = gaussian_blur(fakes, self.blur_sigma)
        crop = self.preprocessing.crop
        top, left = torch.randint(0, FACE_SIDE - crop + 1, (2,), generator=self.generator)
        views = fakes[:, :, top : top + crop, left : left + crop]
        mirrored = torch.rand(len(fakes), generator=self.generator) < 0.5
        views = torch.where(mirrored.to(fakes.device).view(-1, 1, 1, 1), views.flip(-1), views)
        pixels = (views + 1) / 2  # G draws in [-1, 1]; the classifier reads [0, 1] normalised
        normalised = (pixels - self.preprocessing.pixel_mean) / self.preprocessing.pixel_std
        return normalised.contiguous(memory_format=torch.channels_last)

    def loss(self, fakes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the guide on ``fakes`` ``(B, 1, 48, 48)`` in [-1, 1]."""
        with autocast(self.device, self.precision):
            logits = self.model(self.views(fakes))
        return F.cross_entropy(logits.float(), labels)
