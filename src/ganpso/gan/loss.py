"""Hinge loss for the conditional GAN; the one place where discriminator augmentation happens.

L_D = E[relu(1 - D(aug(x), y))] + E[relu(1 + D(aug(G(z, y)), y))] + a * CE(C(aug(x)), y)
      [+ gamma / 2 * E||grad D(aug(x), y)||^2, the R1 penalty, every few steps]
L_G = -E[D(aug(G(z, y)), y)] + a * CE(C(aug(G(z, y))), y) [+ w * CE(f(G(z, y)), y)]
      [+ m / (E|G(z1, y) - G(z2, y)| / E|z1 - z2| + eps), the mode-seeking term]

``C`` is D's auxiliary class head and ``a`` the ``ac_weight``. The head learns from real images
only, so it cannot learn to label G's mistakes. ``f`` is an optional frozen classifier trained
on the real faces (``gan.guidance``) and ``w`` its ``guide_weight``. The mode-seeking term
(MSGAN, Mao et al., 2019), weighted by ``m``, pairs the generator's batch into two halves of the
same classes and rewards faces that differ as much as their latents do: a conditional generator
otherwise tends to draw few faces per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganpso.device import autocast
from ganpso.gan.augment import AdaptiveStrength, augment
from ganpso.gan.guidance import ClassifierGuide
from ganpso.gan.networks import Discriminator, Generator


@dataclass
class PhaseResult:
    loss: torch.Tensor
    real_scores: torch.Tensor | None = None


class HingeLoss:
    def __init__(
        self,
        generator: Generator,
        discriminator: Discriminator,
        strength: AdaptiveStrength,
        device: torch.device,
        precision: str,
        aug_generator: torch.Generator,
        ac_weight: float = 0.0,
        guide: ClassifierGuide | None = None,
        guide_weight: float = 0.0,
        diversity_weight: float = 0.0,
    ) -> None:
        self.G, self.D, self.strength = generator, discriminator, strength
        self.device, self.precision, self.aug_generator = device, precision, aug_generator
        self.ac_weight = ac_weight
        self.guide, self.guide_weight = guide, guide_weight
        self.diversity_weight = diversity_weight

    def run_D(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images = augment(images, self.strength.p, self.aug_generator)
        with autocast(self.device, self.precision):
            scores, logits = self.D.scores_and_logits(images, labels)
        return scores.float(), logits.float()

    def class_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not self.ac_weight:
            return logits.new_zeros(())
        return self.ac_weight * F.cross_entropy(logits, labels)

    def discriminator_phase(
        self, real: torch.Tensor, labels: torch.Tensor, z: torch.Tensor
    ) -> PhaseResult:
        with torch.no_grad(), autocast(self.device, self.precision):
            fake = self.G(z, labels).float()
        scores, logits = self.run_D(torch.cat([real, fake]), torch.cat([labels, labels]))
        real_scores, fake_scores = scores.split(len(labels))
        loss = F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
        loss = loss + self.class_loss(logits[: len(labels)], labels)
        return PhaseResult(loss, real_scores.detach())

    def r1_penalty(self, real: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The batch mean of ``||d D(x, y) / d x||^2`` at the augmented real faces D sees."""
        images = augment(real, self.strength.p, self.aug_generator).detach().requires_grad_(True)
        with autocast(self.device, self.precision):
            scores, _ = self.D.scores_and_logits(images, labels)
        (gradient,) = torch.autograd.grad(scores.float().sum(), images, create_graph=True)
        return gradient.float().square().sum(dim=(1, 2, 3)).mean()

    def generator_phase(self, labels: torch.Tensor, z: torch.Tensor) -> PhaseResult:
        if self.diversity_weight:
            labels = paired_labels(labels)
        with autocast(self.device, self.precision):
            fake = self.G(z, labels).float()
        scores, logits = self.run_D(fake, labels)
        loss = -scores.mean() + self.class_loss(logits, labels)
        if self.guide is not None and self.guide_weight:
            loss = loss + self.guide_weight * self.guide.loss(fake, labels)
        if self.diversity_weight:
            loss = loss + self.diversity_weight * mode_seeking_loss(fake, z)
        return PhaseResult(loss)


def paired_labels(labels: torch.Tensor) -> torch.Tensor:
    """The second half of the batch takes the first half's classes: face i pairs with i + n/2."""
    half = len(labels) // 2
    return torch.cat([labels[:half], labels[:half], labels[2 * half :]])


def mode_seeking_loss(fake: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """MSGAN's term: the inverse of how far paired faces lie apart per unit of latent distance."""
    half = len(fake) // 2
    image_gap = (fake[:half] - fake[half : 2 * half]).abs().mean()
    latent_gap = (z[:half] - z[half : 2 * half]).abs().mean()
    return 1 / (image_gap / latent_gap + eps)
