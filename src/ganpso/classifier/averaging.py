"""An exponential moving average of a model's weights, for ``TrainConfig.ema_decay``.

``fit`` wraps the model in ``torch.optim.swa_utils.AveragedModel`` with this update; the average
is what is evaluated on PublicTest and saved.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def ema_update(decay: float) -> Callable[..., None]:
    """AveragedModel's in-place update with a warm-up: step t uses min(decay, (1+t)/(10+t)).

    Without the warm-up the average keeps the random initial weights for thousands of steps and
    its early epochs score at chance on PublicTest.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], steps: torch.Tensor):
        t = float(steps)
        weight = 1.0 - min(decay, (1.0 + t) / (10.0 + t))
        for mean, value in zip(averaged, current, strict=True):
            if mean.is_floating_point():
                mean.lerp_(value, weight)
            else:  # BatchNorm's batch counters are copied, not averaged
                mean.copy_(value)

    return update
