"""Class-conditional generator and projection discriminator for 48x48 grayscale faces.

Generator (BigGAN-style, small): z ``(B, z_dim)`` and label ``(B,)`` -> a ``6x6`` map, three
residual up-blocks with class-conditional batch norm (6 -> 12 -> 24 -> 48), tanh image in
``[-1, 1]``, ``(B, 1, 48, 48)``. Discriminator: spectrally normalised residual down-blocks
(48 -> 24 -> 12 -> 6), summed features ``h``, output ``linear(h) + <embed(y), h>`` (the projection
discriminator of Miyato & Koyama 2018), plus an auxiliary class head on the same ``h``.

Projection alone learned faces but not emotions: every row of the class grid showed the same
faces. Emotions differ by small muscle movements, a weak signal for the projection term, so the
auxiliary head (trained on real images only) and a cross-entropy term on G's fakes
(``ac_weight``) make the class explicit.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganpso.emotions import IMAGE_SIZE, NUM_CLASSES

START = IMAGE_SIZE // 8  # 6: three doublings reach 48
CLASS_DIM = 32  # class embedding concatenated to z


class ConditionalBatchNorm(nn.Module):
    """Batch norm without affine parameters, then a per-class gain and bias."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = self.gain(y)[:, :, None, None]
        bias = self.bias(y)[:, :, None, None]
        return self.norm(x) * gain + bias


UPSAMPLING = ("nearest", "bilinear")


class UpBlock(nn.Module):
    """Resize (x2), then convolve, so no transposed convolution can draw a checkerboard.

    ``nearest`` repeats each pixel into a 2x2 block whose edges a 3x3 kernel can still turn into
    a 2-pixel stripe; ``bilinear`` interpolates, leaving no such edge.
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_classes: int, upsample: str = "nearest"
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.norm1 = ConditionalBatchNorm(in_channels, num_classes)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = ConditionalBatchNorm(out_channels, num_classes)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.resize(F.relu(self.norm1(x, y)))
        h = self.conv2(F.relu(self.norm2(self.conv1(h), y)))
        return h + self.shortcut(self.resize(x))

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample == "nearest":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Generator(nn.Module):
    """``(z, y)`` -> faces ``(B, 1, 48, 48)`` in ``[-1, 1]``; widths 8w, 4w, 2w, w."""

    def __init__(
        self,
        z_dim: int = 128,
        width: int = 32,
        num_classes: int = NUM_CLASSES,
        class_dim: int = CLASS_DIM,
        upsample: str = "nearest",
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample {upsample!r}; expected one of {UPSAMPLING}")
        self.z_dim, self.num_classes, self.upsample = z_dim, num_classes, upsample
        channels = [8 * width, 4 * width, 2 * width, width]
        # the class also enters the stem beside z: from the first step, each class gets its own
        # 6x6 map, instead of waiting for the batch-norm gains to drift apart
        self.class_embed = nn.Embedding(num_classes, class_dim)
        self.stem = nn.Linear(z_dim + class_dim, channels[0] * START * START)
        self.blocks = nn.ModuleList(
            UpBlock(a, b, num_classes, upsample) for a, b in itertools.pairwise(channels)
        )
        self.out_norm = nn.BatchNorm2d(channels[-1])
        self.out_conv = nn.Conv2d(channels[-1], 1, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.stem(torch.cat([z, self.class_embed(y)], dim=1))
        h = h.view(z.shape[0], -1, START, START)  # (B, 8w, 6, 6)
        h = h.contiguous(memory_format=torch.channels_last)  # oneDNN's fast layout on CPU
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


STANDING_BATCH_SIZE = 256


@torch.no_grad()
def standing_statistics(generator: Generator, batches: int, seed: int = 0) -> None:
    """Recompute the generator's batch-norm statistics with its own weights, in place.

    The averaged generator (EMA) takes its running statistics from the raw generator's last
    batches, whose weights differ; ``batches`` batches of its own fakes (classes uniform,
    fixed seed, every batch weighted equally) give it statistics that match, as BigGAN's
    "standing statistics" do.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average
    was_training = generator.training
    generator.train()
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    for _ in range(batches):
        z = torch.randn(STANDING_BATCH_SIZE, generator.z_dim, generator=rng).to(device)
        y = torch.randint(0, generator.num_classes, (STANDING_BATCH_SIZE,), generator=rng)
        generator(z, y.to(device))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    generator.train(was_training)


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    return spectral_norm(module) if enabled else module


class DownBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, first: bool, sn: bool) -> None:
        super().__init__()
        self.first = first  # the first block sees the raw image: no ReLU before its conv
        self.conv1 = maybe_sn(nn.Conv2d(in_channels, out_channels, 3, padding=1), sn)
        self.conv2 = maybe_sn(nn.Conv2d(out_channels, out_channels, 3, padding=1), sn)
        self.shortcut = maybe_sn(nn.Conv2d(in_channels, out_channels, 1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.leaky_relu(x, 0.2)
        h = F.avg_pool2d(self.conv2(F.leaky_relu(self.conv1(h), 0.2)), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class Discriminator(nn.Module):
    """Faces ``(B, 1, 48, 48)`` and labels ``(B,)`` -> realness scores ``(B,)``."""

    def __init__(
        self, width: int = 32, num_classes: int = NUM_CLASSES, spectral: bool = True
    ) -> None:
        super().__init__()
        channels = [1, width, 2 * width, 4 * width, 8 * width]
        self.blocks = nn.Sequential(
            *(
                DownBlock(a, b, first=i == 0, sn=spectral)
                for i, (a, b) in enumerate(itertools.pairwise(channels))
            )
        )  # 48 -> 24 -> 12 -> 6 -> 3
        self.linear = maybe_sn(nn.Linear(channels[-1], 1), spectral)
        self.embed = maybe_sn(nn.Embedding(num_classes, channels[-1]), spectral)
        self.classifier = nn.Linear(channels[-1], num_classes)  # auxiliary head (AC-GAN)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.scores_and_logits(x, y)[0]

    def scores_and_logits(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Realness ``(B,)`` and the auxiliary head's class logits ``(B, classes)``."""
        x = x.contiguous(memory_format=torch.channels_last)
        h = F.leaky_relu(self.blocks(x), 0.2).sum(dim=(2, 3))  # (B, 8w)
        scores = self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)
        return scores, self.classifier(h)
