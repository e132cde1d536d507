"""BatchNorm folded into the convolution before it, for inference.

An evaluated BatchNorm is an affine map per channel, so ``BN(conv(x))`` equals one convolution
with rescaled weights and a bias. Folding removes a pass over every activation at inference
(what it buys per machine: ``results/benchmarks/inference-*.json``).

Example:
    >>> from ganpso.classifier.config import ModelConfig
    >>> from ganpso.classifier.models import build_model
    >>> folded = fold_batch_norm(build_model(ModelConfig(width=4)))
    >>> any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    False
"""

from __future__ import annotations

import copy

from torch import nn


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with each Conv2d -> BatchNorm2d pair as one Conv2d.

    Traced with ``torch.fx``; a model that cannot be traced comes back as an unfolded eval copy,
    which computes the same logits.
    """
    from torch.fx.experimental.optimization import fuse

    original = copy.deepcopy(model).eval()
    try:
        return fuse(original, inplace=False).eval()
    except Exception:  # torch.fx cannot trace data-dependent control flow
        return original
