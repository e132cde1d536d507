"""The class-conditional GAN's config and the config of its evaluation stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ganpso.config import YamlConfig, bounded
from ganpso.data.config import DataConfig


@dataclass
class GanConfig(YamlConfig):
    """The class-conditional GAN (``ganpso.gan``): networks, optimisation, augmentation, output."""

    data: DataConfig = field(default_factory=DataConfig)
    z_dim: int = bounded(128, ge=1, le=4096)
    g_width: int = bounded(16, ge=1, le=512)  # generator widths 8w, 4w, 2w, w
    # how the generator doubles its maps before each convolution (see gan.networks.UpBlock)
    upsample: Literal["nearest", "bilinear"] = "nearest"
    d_width: int = bounded(16, ge=1, le=512)  # discriminator widths w, 2w, 4w, 8w
    d_spectral_norm: bool = True
    # R1 penalty on real faces, (gamma / 2) E||grad_x D(x)||^2 (Mescheder et al., 2018), taken
    # every r1_every steps and scaled by it (StyleGAN2's lazy regularisation); 0: off
    r1_gamma: float = bounded(0.0, ge=0, le=10_000)
    r1_every: int = bounded(16, ge=1, le=10_000)
    # auxiliary class loss (0: projection only, which ignored the class)
    ac_weight: float = bounded(2.0, ge=0, le=1000)
    # classifier guidance (gan.guidance): a frozen classifier trained on Training, whose
    # cross-entropy on the fakes, times guide_weight, joins the generator's loss; 0: off
    guide_classifier: str | None = None
    guide_weight: float = bounded(0.0, ge=0, le=1000)
    # Gaussian blur (sigma in pixels) of the fakes the guide sees: it then rewards only class
    # evidence that survives a blur, not fine detail that fools one classifier without teaching
    # another; 0: off
    guide_blur: float = bounded(0.0, ge=0, le=8)
    # weight of the mode-seeking term (gan.loss): faces of one class drawn from distant latents
    # are pushed apart, against a generator that draws few faces per class; 0: off
    diversity_weight: float = bounded(0.0, ge=0, le=1000)
    steps: int = bounded(10_000, ge=1, le=100_000_000)
    # stop (and save) early when this is reached
    time_limit_minutes: float | None = bounded(None, gt=0)
    batch_size: int = bounded(64, ge=1, le=65_536)
    # a quarter of lr_d: at equal rates D won and G drew no faces
    lr_g: float = bounded(1e-4, gt=0, le=1)
    lr_d: float = bounded(4e-4, gt=0, le=1)
    beta1: float = bounded(0.0, ge=0, lt=1)
    beta2: float = bounded(0.99, ge=0, lt=1)
    ema_decay: float = bounded(0.999, ge=0, lt=1)  # generator weights averaged for sampling
    # steps before the average starts (it copies the weights until then)
    ema_start: int = bounded(500, ge=0)
    # batches of 256 fakes that recompute the averaged generator's batch-norm statistics when
    # training ends (0: keep the raw generator's); see gan.networks.standing_statistics
    standing_stats_batches: int = bounded(20, ge=0, le=10_000)
    # classes drawn uniformly: rare classes as often as common ones
    class_sampling: Literal["uniform"] = "uniform"
    # real faces flipped left-right half the time (StyleGAN2-ADA's --mirror): each class's
    # faces count twice
    mirror: bool = True
    # fixed augmentation probability; None: adaptive (ADA)
    augment_p: float | None = bounded(None, ge=0, le=1)
    ada_target: float = bounded(0.6, gt=0, lt=1)
    ada_speed_images: int = bounded(100_000, ge=1)  # images for p to move by 1
    seed: int = bounded(0, ge=0)
    device: str = "auto"
    # autocast dtype of forward passes; auto: bf16 where it is faster than fp32 (ganpso.device)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    num_threads: int | None = bounded(None, ge=1, le=1024)
    log_every: int = bounded(100, ge=1)
    sample_every: int = bounded(1000, ge=1)  # sample grid (one row per emotion, fixed seeds)
    checkpoint_every: int = bounded(1000, ge=1)
    # keep the averaged generator every this many steps in snapshots/ (with standing
    # statistics, like the final one): quality against training time; None: only the last
    snapshot_every: int | None = bounded(None, ge=1)
    # NaN/inf losses roll back to the last checkpoint this many times
    max_rollbacks: int = bounded(3, ge=0, le=1000)


@dataclass
class GanMetricsConfig:
    """The GAN quality stage of ``ganpso run`` (``ganpso.gan.evaluation``)."""

    enabled: bool = True
    # fakes per class for FID/KID, near-copies and diversity
    per_class: int = bounded(1000, ge=2, le=1_000_000)
    cas_epochs: int = bounded(12, ge=1, le=10_000)
    # fakes per class for CAS; None: Training's size / 7
    cas_per_class: int | None = bounded(None, ge=1)
    # CAS classifiers trained (seeds 0..n-1), averaged: one run is noisy
    cas_seeds: int = bounded(1, ge=1, le=100)
    # draws of fakes over which disgust's FID/KID ratios are averaged
    ratio_draws: int = bounded(5, ge=1, le=1000)
