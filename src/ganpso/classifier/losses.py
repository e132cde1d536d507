"""Training losses for imbalanced classes, and the class weights they may use.

``ImbalanceLoss`` maps logits ``(B, K)`` and targets ``(B,)`` to one loss, by ``LossConfig.name``:

- ``cross_entropy``: CE with label smoothing.
- ``focal`` (Lin et al., 2017): ``-(1 - p_t)^gamma log p_t``, which shrinks the loss of faces the
  model already gets right; gamma 0 is CE. Label smoothing is not applied.
- ``logit_adjusted`` (Menon et al., 2021): CE on ``z + tau log pi``, pi the Training class prior.
  The model then learns logits whose plain argmax balances the per-class error, so prediction
  uses the plain logits.
- ``ldam`` (Cao et al., 2019): CE on ``s (z - m_y e_y)``, margins ``m_c = M (n_min / n_c)^(1/4)``
  so rare classes must be won by more; prediction uses the plain logits. With deferred
  re-weighting (``reweight_from``) it is the paper's LDAM-DRW.

Class weights (``class_weights``): ``inverse`` N / (K n_c), its ``sqrt_inverse``, or
``effective_number`` (1 - beta) / (1 - beta^n_c) with beta 0.9999 (Cui et al., 2019), each scaled
so that the Training set's mean loss keeps its size. A GAN face's own weight multiplies its loss.

Example:
    >>> loss = ImbalanceLoss(LossConfig(name="focal"), torch.tensor([100.0, 10.0]), 0.0)
    >>> float(loss(torch.zeros(2, 2), torch.tensor([0, 1]))) > 0
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganpso.classifier.config import LossConfig, TrainConfig
from ganpso.emotions import NUM_CLASSES

EFFECTIVE_NUMBER_BETA = 0.9999


def class_weights(labels: torch.Tensor, mode: str) -> torch.Tensor | None:
    """Loss weights per class from Training counts (``mode`` as ``TrainConfig.class_weighting``)."""
    if mode == "none":
        return None
    counts = torch.bincount(labels, minlength=NUM_CLASSES).float().clamp(min=1)
    if mode == "effective_number":
        weights = (1 - EFFECTIVE_NUMBER_BETA) / (1 - EFFECTIVE_NUMBER_BETA**counts)
    else:
        weights = counts.sum() / (NUM_CLASSES * counts)
        if mode == "sqrt_inverse":
            weights = weights.sqrt()
    return weights / (weights * counts).sum() * counts.sum()  # keeps the mean loss scale


def batch_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weights: torch.Tensor | None,
    image_weights: torch.Tensor | None,
    label_smoothing: float,
) -> torch.Tensor:
    """Cross-entropy, class-weighted (a weighted mean) and image-weighted (GAN faces) if asked."""
    loss = F.cross_entropy(
        logits,
        target,
        weight=class_weights,
        label_smoothing=label_smoothing,
        reduction="mean" if image_weights is None else "none",
    )
    return loss if image_weights is None else (loss * image_weights).mean()


def ldam_margins(counts: torch.Tensor, max_margin: float) -> torch.Tensor:
    """``m_c = max_margin (n_min / n_c)^(1/4)``: the rarest class gets ``max_margin``."""
    quarter = counts.clamp(min=1).float() ** -0.25
    return max_margin * quarter / quarter.max()


class ImbalanceLoss:
    """The configured loss, with what it needs from the Training class ``counts`` ``(K,)``."""

    def __init__(self, config: LossConfig, counts: torch.Tensor, label_smoothing: float) -> None:
        self.config, self.label_smoothing = config, label_smoothing
        prior = counts.clamp(min=1).float() / counts.clamp(min=1).sum()
        self.log_prior = prior.log()  # (K,)
        self.margins = ldam_margins(counts, config.ldam_max_margin)  # (K,)

    def __call__(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        class_weights: torch.Tensor | None = None,
        image_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        name = self.config.name
        if name == "focal":
            return self.focal(logits, target, class_weights, image_weights)
        if name == "logit_adjusted":
            logits = logits + self.config.logit_tau * self.log_prior.to(logits.device)
        elif name == "ldam":
            margin = self.margins.to(logits.device)[target]  # (B,)
            shifted = logits - F.one_hot(target, logits.shape[1]) * margin[:, None]
            logits = self.config.ldam_scale * shifted
        return batch_loss(logits, target, class_weights, image_weights, self.label_smoothing)

    def focal(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        class_weights: torch.Tensor | None,
        image_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]  # (B,)
        per_image = -((1 - log_p.exp()) ** self.config.focal_gamma) * log_p
        if class_weights is not None:  # a weighted mean, as cross_entropy's ``weight`` gives
            weight = class_weights[target]
            per_image = per_image * weight
            if image_weights is None:
                return per_image.sum() / weight.sum()
        if image_weights is not None:
            per_image = per_image * image_weights
        return per_image.mean()


def build_loss(config: TrainConfig, labels: torch.Tensor) -> ImbalanceLoss:
    counts = torch.bincount(labels, minlength=NUM_CLASSES)
    return ImbalanceLoss(config.loss, counts, config.label_smoothing)


def reweighting(config: TrainConfig, epoch: int) -> bool:
    """Whether class weights apply in ``epoch`` (0-based): always, or once deferred ones start."""
    return config.reweight_from is None or epoch >= round(config.reweight_from * config.epochs)
