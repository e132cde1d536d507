"""Differentiable augmentation for the discriminator (DiffAugment), with an ADA-style strength.

Every image the discriminator sees, real or fake, passes through the same random brightness,
contrast, translation and cutout, each applied with probability ``p``. The ops are
differentiable, so the generator's gradient flows through them and it is not taught to produce
augmented-looking faces. ``AdaptiveStrength`` moves ``p`` so that the discriminator's sign on real
images, ``r_t = E[sign(D(real))]``, stays near a target (0.6 in Karras et al. 2020): a
discriminator that grows too sure of the training images gets stronger augmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Augment ``(B, 1, H, W)`` images in ``[-1, 1]``; each op hits each image with prob. ``p``."""
    if p <= 0:
        return images
    images = brightness(images, p, generator)
    images = contrast(images, p, generator)
    images = translate(images, p, generator)
    return cutout(images, p, generator)


def _chosen(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    rand = torch.rand(images.shape[0], 1, 1, 1, generator=generator, device=generator.device)
    return (rand < p).to(images.device, images.dtype)


def _uniform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    rand = torch.rand(images.shape[0], 1, 1, 1, generator=generator, device=generator.device)
    return rand.to(images.device, images.dtype)


def brightness(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    shift = (_uniform(images, generator) - 0.5) * _chosen(images, p, generator)  # +-0.5
    return images + shift


def contrast(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    factor = 1 + (_uniform(images, generator) - 0.5) * _chosen(images, p, generator)  # 0.5..1.5
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * factor + mean


def translate(
    images: torch.Tensor, p: float, generator: torch.Generator, ratio: float = 0.125
) -> torch.Tensor:
    """Shift by up to ``ratio`` of the side, filling with zeros (grey), as DiffAugment does."""
    batch, _, height, width = images.shape
    max_y, max_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    chosen = _chosen(images, p, generator).view(batch, 1, 1).long()
    device = generator.device
    shift_y = torch.randint(-max_y, max_y + 1, (batch, 1, 1), generator=generator, device=device)
    shift_x = torch.randint(-max_x, max_x + 1, (batch, 1, 1), generator=generator, device=device)
    shift_y, shift_x = shift_y.to(images.device) * chosen, shift_x.to(images.device) * chosen
    rows = torch.arange(height, device=images.device).view(1, height, 1) + shift_y + 1
    cols = torch.arange(width, device=images.device).view(1, 1, width) + shift_x + 1
    rows = rows.clamp(0, height + 1).expand(batch, height, width)
    cols = cols.clamp(0, width + 1).expand(batch, height, width)
    padded = F.pad(images, (1, 1, 1, 1))  # the border row/col is the zero fill
    index = torch.arange(batch, device=images.device).view(batch, 1, 1)
    return padded[index, :, rows, cols].permute(0, 3, 1, 2)


def cutout(
    images: torch.Tensor, p: float, generator: torch.Generator, ratio: float = 0.5
) -> torch.Tensor:
    """Zero a random square of ``ratio`` x side in the chosen images."""
    batch, _, height, width = images.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    device = generator.device
    top = torch.randint(
        0, height + 1 - size_y % 2, (batch, 1, 1), generator=generator, device=device
    )
    left = torch.randint(
        0, width + 1 - size_x % 2, (batch, 1, 1), generator=generator, device=device
    )
    top, left = top.to(images.device) - size_y // 2, left.to(images.device) - size_x // 2
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    chosen = _chosen(images, p, generator).view(batch, 1, 1).bool()
    keep = ~(inside & chosen)
    return images * keep.unsqueeze(1).to(images.dtype)


class AdaptiveStrength:
    """ADA's controller: every ``interval`` calls, ``p += sign(r_t - target) * n / speed_images``,
    with ``n`` the real images that the interval saw and ``p`` kept in ``[0, p_max]``.

    Example:
        >>> strength = AdaptiveStrength(target=0.6, interval=1, speed_images=100)
        >>> strength.update(torch.ones(10))  # D calls every real face real: r_t = 1 > 0.6
        >>> strength.p
        0.1
    """

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        speed_images: int = 100_000,
        p: float = 0.0,
        p_max: float = 0.8,
    ) -> None:
        self.target, self.interval, self.speed_images = target, interval, speed_images
        self.p, self.p_max = float(p), p_max
        self._sign_sum = 0.0
        self._count = 0
        self._calls = 0

    def update(self, real_scores: torch.Tensor) -> None:
        """Count the signs of D's scores ``(B,)`` on real images; move ``p`` every interval."""
        self._sign_sum += float(real_scores.detach().float().sign().sum())
        self._count += len(real_scores)
        self._calls += 1
        if self._calls >= self.interval:
            r_t = self._sign_sum / self._count
            direction = 1.0 if r_t > self.target else -1.0
            step = direction * self._count / self.speed_images
            self.p = min(max(self.p + step, 0.0), self.p_max)
            self._sign_sum, self._count, self._calls = 0.0, 0, 0

    def state_dict(self) -> dict[str, float]:
        return {"p": self.p}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.p = float(state["p"])
