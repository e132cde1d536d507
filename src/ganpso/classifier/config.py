"""The classifier's recipe: model, augmentation, optimisation and the GAN faces it trains on.

Example:
    >>> cfg = TrainConfig.from_dict({"model": {"name": "vgg_small"}, "epochs": 2})
    >>> cfg.model.name, cfg.epochs
    ('vgg_small', 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ganpso.config import YamlConfig, bounded
from ganpso.data.config import DataConfig
from ganpso.emotions import EMOTIONS, IMAGE_SIZE
from ganpso.errors import ConfigError


@dataclass
class ModelConfig:
    """Which registered classifier to build (see ``ganpso.classifier.models``)."""

    name: str = "vgg_small"
    dropout: float = bounded(0.4, ge=0, lt=1)
    # channels of the first stage; each later stage doubles it. The cap keeps a checkpoint's
    # header from asking for a model of gigabytes
    width: int = bounded(32, ge=1, le=256)
    # the last layer: linear, or cosine (logits are the cosines between the pooled features and
    # each class's weight vector, in [-1, 1]: LDAM scales them and needs them bounded)
    head: Literal["linear", "cosine"] = "linear"


@dataclass
class LossConfig:
    """The training loss (``ganpso.classifier.losses``): cross-entropy or a loss for imbalance."""

    name: Literal["cross_entropy", "focal", "logit_adjusted", "ldam"] = "cross_entropy"
    focal_gamma: float = bounded(2.0, ge=0, le=10)  # focal: 0 is cross-entropy
    logit_tau: float = bounded(1.0, ge=0, le=10)  # logit_adjusted: weight of log prior
    ldam_max_margin: float = bounded(0.5, gt=0, le=5)  # ldam: the rarest class's margin
    ldam_scale: float = bounded(30.0, gt=0, le=1000)  # ldam: logits scale


@dataclass
class AugmentConfig:
    """Training-time augmentation, applied on the device to uint8 batches."""

    crop: int = bounded(40, ge=8, le=IMAGE_SIZE)  # random crop side; evaluation: centre, corners
    flip: bool = True
    erase_prob: float = bounded(0.5, ge=0, le=1)  # probability of one erased square per image
    erase_max: int = bounded(20, ge=1, le=IMAGE_SIZE)  # largest erased side in pixels
    # a random rotation and zoom of the whole face before cropping (FER's head poses and face
    # sizes vary): angle uniform in +-rotate_deg, zoom uniform in 1 +- scale; 0 turns each off
    rotate_deg: float = bounded(0.0, ge=0, le=180)
    scale: float = bounded(0.0, ge=0, lt=1)


@dataclass
class SyntheticConfig:
    """GAN faces added to Training before the classifier trains (``ganpso.pipeline.balance``).

    Each class is topped up to ``ratio`` x the largest class's real count (``class_ratios``
    overrides it per class); a class already above that gets nothing.
    """

    generator: str | None = None  # generator.safetensors; None: real images only
    ratio: float = bounded(0.0, ge=0, le=10)
    class_ratios: dict[str, float] = field(default_factory=dict)  # e.g. {disgust: 0.5}
    filter_confidence: float = bounded(
        0.0, ge=0, le=1
    )  # keep fakes whose own class gets >= this probability
    filter_classifier: str | None = None  # classifier for the filter; None: the bundled model
    weight: float = bounded(
        1.0, gt=0, le=10
    )  # loss weight of a synthetic image (a real one weighs 1)
    seed: int = bounded(0, ge=0)  # latent draws: same seed, same faces
    # latents truncated at this many standard deviations (typical faces over diverse ones);
    # None: untruncated
    truncation: float | None = bounded(None, gt=0, le=10)

    def check(self, where: str) -> None:
        unknown = sorted(set(self.class_ratios) - set(EMOTIONS))
        if unknown:
            raise ConfigError(f"{where}.class_ratios: unknown classes {unknown}; valid: {EMOTIONS}")
        for name, ratio in self.class_ratios.items():
            if (
                not isinstance(ratio, int | float)
                or isinstance(ratio, bool)
                or not 0 <= ratio <= 10
            ):
                raise ConfigError(
                    f"{where}.class_ratios.{name}: {ratio!r} is out of range; "
                    "expected >= 0 and <= 10"
                )


@dataclass
class TrainConfig(YamlConfig):
    """One classifier training run. ``ganpso train --config`` loads this."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    seed: int = bounded(0, ge=0)
    # a .safetensors classifier to start from (fine-tuning); its model section must equal ours
    init: str | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # autocast dtype of forward passes; auto: bf16 where it is faster than fp32 (ganpso.device)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    epochs: int = bounded(35, ge=1, le=100_000)
    batch_size: int = bounded(128, ge=1, le=65_536)
    lr: float = bounded(0.1, gt=0, le=100)  # peak of the one-cycle schedule
    momentum: float = bounded(0.9, ge=0, lt=1)
    weight_decay: float = bounded(5e-4, ge=0, le=1)
    warmup_fraction: float = bounded(0.2, gt=0, lt=1)
    label_smoothing: float = bounded(0.1, ge=0, lt=1)
    # exponential moving average of the weights, evaluated and kept instead of the raw ones;
    # None trains without it. 0.999 averages over about 1,000 steps (4 epochs of FER2013)
    ema_decay: float | None = bounded(None, gt=0, lt=1)
    # mixup: each batch blended with a shuffled copy of itself, lambda ~ Beta(alpha, alpha), the
    # loss blended likewise; 0 trains without it
    mixup_alpha: float = bounded(0.0, ge=0, le=10)
    # CutMix: a random rectangle of each image pasted from a shuffled partner, the loss blended
    # by the area each shows; 0 trains without it; not together with mixup
    cutmix_alpha: float = bounded(0.0, ge=0, le=10)
    loss: LossConfig = field(default_factory=LossConfig)
    class_weighting: Literal["none", "inverse", "sqrt_inverse", "effective_number"] = "none"
    # deferred re-weighting: class weights apply only from this fraction of the epochs on;
    # None: from the start
    reweight_from: float | None = bounded(None, ge=0, lt=1)
    sampling: Literal["none", "oversample"] = "none"  # re-sample rare classes to balance
    early_stopping_patience: int | None = bounded(
        None, ge=1
    )  # epochs without PublicTest gain before stopping
    selection_metric: Literal["accuracy", "macro_f1"] = "accuracy"
    tta: bool = True  # final evaluation averages 5 crops x 2 flips
    eval_batch_size: int = bounded(512, ge=1, le=65_536)
    num_threads: int | None = bounded(
        None, ge=1, le=1024
    )  # torch threads; None keeps torch's default

    def check(self, where: str) -> None:
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            raise ConfigError(
                f"{where}: mixup_alpha {self.mixup_alpha} with cutmix_alpha {self.cutmix_alpha}; "
                "choose one way of mixing images (set the other to 0)"
            )
        # LDAM's scale s multiplies the logits: bounded cosines train, unbounded ones diverge;
        # the other losses cannot fit cosines, which never reach a confident softmax
        if (self.loss.name == "ldam") != (self.model.head == "cosine"):
            raise ConfigError(
                f"{where}: loss.name {self.loss.name!r} with model.head {self.model.head!r}; "
                "the ldam loss needs model.head: cosine, and the cosine head needs loss ldam"
            )
