"""CNN classifiers for 48x48 grayscale faces behind a small registry.

Every model maps a normalised batch ``(B, 1, H, W)`` (H = W = the crop size, 40 by default) to
logits ``(B, num_classes)``; the global average pool makes them accept any input size >= 16.

Example:
    >>> from ganpso.classifier.config import ModelConfig
    >>> model = build_model(ModelConfig(name="vgg_small", width=8))
    >>> model(torch.zeros(2, 1, 40, 40)).shape
    torch.Size([2, 7])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganpso.classifier.config import ModelConfig
from ganpso.emotions import NUM_CLASSES
from ganpso.errors import ConfigError

ModelFactory = Callable[[ModelConfig, int], nn.Module]
_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    def add(factory: ModelFactory) -> ModelFactory:
        _REGISTRY[name] = factory
        return factory

    return add


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def build_model(config: ModelConfig, num_classes: int = NUM_CLASSES) -> nn.Module:
    """Build a registered model; an unknown name fails listing the valid ones."""
    if config.name not in _REGISTRY:
        raise ConfigError(f"model {config.name!r} is unknown; valid models: {list_models()}")
    return _REGISTRY[config.name](config, num_classes)


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class CosineLinear(nn.Module):
    """Logits = cosine between the features and each class's weight vector, in [-1, 1]."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # as nn.Linear initialises its weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, K)
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()


def pooled_head(in_channels: int, config: ModelConfig, num_classes: int) -> nn.Sequential:
    """Global average pool, dropout, last layer: why every model accepts any input size >= 16."""
    last: nn.Module = (
        CosineLinear(in_channels, num_classes)
        if config.head == "cosine"
        else nn.Linear(in_channels, num_classes)
    )
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(config.dropout), last)


class SqueezeExcite(nn.Module):
    """Rescale each channel by a gate computed from all channels' means (Hu et al., SENet)."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(channels // reduction, 8)  # a few ReLU units can all start dead
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class VGGSmall(nn.Module):
    """Four stages of two 3x3 conv-BN-ReLU layers and a 2x2 max-pool, widths w, 2w, 4w, 8w.

    With w = 32 it has 1.17 M parameters; 40x40 input -> 2x2x(8w) -> average pool -> linear.
    ``squeeze_excite`` gates each stage's channels before its pool (``vgg_se``).
    """

    def __init__(self, config: ModelConfig, num_classes: int, squeeze_excite: bool = False) -> None:
        super().__init__()
        width = config.width
        layers: list[nn.Module] = []
        in_channels = 1
        for stage in range(4):
            out_channels = width * 2**stage
            layers += conv_bn_relu(in_channels, out_channels)
            layers += conv_bn_relu(out_channels, out_channels)
            if squeeze_excite:
                layers.append(SqueezeExcite(out_channels))
            layers.append(nn.MaxPool2d(2))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = pooled_head(in_channels, config, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, H, W) -> (B, num_classes)
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNetSmall(nn.Module):
    """A stem conv and four stages of one residual block each, widths w, 2w, 4w, 8w."""

    def __init__(self, config: ModelConfig, num_classes: int) -> None:
        super().__init__()
        width = config.width
        stages: list[nn.Module] = [*conv_bn_relu(1, width)]
        in_channels = width
        for stage in range(4):
            out_channels = width * 2**stage
            stages.append(BasicBlock(in_channels, out_channels, stride=1 if stage == 0 else 2))
            in_channels = out_channels
        self.features = nn.Sequential(*stages)
        self.head = pooled_head(in_channels, config, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, H, W) -> (B, num_classes)
        return self.head(self.features(x))


@register_model("vgg_small")
def vgg_small(config: ModelConfig, num_classes: int) -> nn.Module:
    return VGGSmall(config, num_classes)


@register_model("vgg_se")
def vgg_se(config: ModelConfig, num_classes: int) -> nn.Module:
    return VGGSmall(config, num_classes, squeeze_excite=True)


@register_model("resnet_small")
def resnet_small(config: ModelConfig, num_classes: int) -> nn.Module:
    return ResNetSmall(config, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
