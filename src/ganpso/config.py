"""Typed configs, one dataclass per component, loaded from YAML.

Keys equal constructor argument names, so a config section flows straight into the code that
uses it. Unknown keys are refused with the list of valid ones, never silently ignored.

Example:
    >>> cfg = TrainConfig.from_dict({"model": {"name": "vgg_small"}, "epochs": 2})
    >>> cfg.model.name, cfg.epochs
    ('vgg_small', 2)
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import yaml

from ganpso.errors import ConfigError

T = TypeVar("T")


class YamlConfig:
    """What every top-level config can do: load strictly from a dict or YAML, dump to a dict."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        return _build(cls, raw, "config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        return cls.from_dict(read_yaml(path))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class DataConfig:
    """Where the images come from and how they are read (see ``ganpso.data.load_dataset``)."""

    source: str = "../shared/data/fer2013.zip"
    cache_dir: str | None = "~/.cache/ganpso"
    skip_bad_images: bool = False  # skip (and count) corrupt images instead of stopping
    unknown_classes: Literal["drop", "error"] = "drop"  # class folders outside the seven
    split_seed: int = 0  # stratified split for sources that carry none
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    limit_per_class: int | None = None  # keep at most this many images per class and split


@dataclass
class ModelConfig:
    """Which registered classifier to build (see ``ganpso.classifier.models``)."""

    name: str = "vgg_small"
    dropout: float = 0.4
    width: int = 32  # channels of the first stage; each later stage doubles it


@dataclass
class AugmentConfig:
    """Training-time augmentation, applied on the device to uint8 batches."""

    crop: int = 40  # random crop side in pixels; evaluation uses the centre and corners
    flip: bool = True
    erase_prob: float = 0.5  # probability of one random erased square per image
    erase_max: int = 20  # largest erased side in pixels


@dataclass
class SyntheticConfig:
    """GAN faces added to Training before the classifier trains (``ganpso.pipeline.balance``).

    Each class is topped up to ``ratio`` x the largest class's real count (``class_ratios``
    overrides it per class); a class already above that gets nothing.
    """

    generator: str | None = None  # generator.safetensors; None: real images only
    ratio: float = 0.0
    class_ratios: dict[str, float] = field(default_factory=dict)  # e.g. {disgust: 0.5}
    filter_confidence: float = 0.0  # keep fakes whose own class gets >= this probability
    filter_classifier: str | None = None  # classifier for the filter; None: the bundled model
    weight: float = 1.0  # loss weight of a synthetic image (a real one weighs 1)
    seed: int = 0  # latent draws: same seed, same faces


@dataclass
class TrainConfig(YamlConfig):
    """One classifier training run. ``ganpso train --config`` loads this."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["bf16", "fp32"] = "bf16"  # autocast dtype for forward passes
    channels_last: bool = True
    epochs: int = 35
    batch_size: int = 128
    lr: float = 0.1  # peak of the one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.2
    label_smoothing: float = 0.1
    class_weighting: Literal["none", "inverse", "sqrt_inverse"] = "none"
    sampling: Literal["none", "oversample"] = "none"  # re-sample rare classes to balance
    early_stopping_patience: int | None = None  # epochs without PublicTest gain before stopping
    selection_metric: Literal["accuracy", "macro_f1"] = "accuracy"
    tta: bool = True  # final evaluation averages 5 crops x 2 flips
    eval_batch_size: int = 512
    num_threads: int | None = None  # torch threads; None keeps torch's default


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, raising ``ConfigError`` naming the file on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({_first_line(exc)})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return raw


def write_yaml(data: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` strings (value parsed as YAML) onto a nested dict, returning a copy."""
    merged = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. epochs=10")
        node = merged
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[leaf] = yaml.safe_load(value)
    return merged


def build_config(cls: type[T], raw: Any, where: str) -> T:
    """Build any config dataclass from a mapping with the checks above (for components' configs)."""
    return _build(cls, raw, where)


def _build(cls: type[T], raw: Any, where: str) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    valid = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in raw.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against a type hint, building nested dataclasses."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not a valid {_describe(hint)}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    if hint in (int, float, str, bool):
        if isinstance(value, bool) and hint is not bool:
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    return value


# YAML 1.1 reads "1e-4" (no dot in the mantissa) as a string; it is still meant as a number
_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _describe(hint: Any) -> str:
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(hint))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@dataclass
class GanConfig(YamlConfig):
    """The class-conditional GAN (``ganpso.gan``): networks, optimisation, augmentation, output."""

    data: DataConfig = field(default_factory=DataConfig)
    z_dim: int = 128
    g_width: int = 16  # generator widths 8w, 4w, 2w, w
    d_width: int = 16  # discriminator widths w, 2w, 4w, 8w
    d_spectral_norm: bool = True
    ac_weight: float = 2.0  # auxiliary class loss (0: projection only, which ignored the class)
    # LeCam regulariser on D's scores (ganpso.gan.loss); 0: off. Pair it with a fixed augment_p:
    # it keeps real scores small but positive, so ADA's r_t (their sign) read "memorised" and
    # drove p to its 0.8 cap within 2,500 steps
    lecam_weight: float = 0.0
    lecam_decay: float = 0.99  # of its moving averages of D's scores on reals and fakes
    steps: int = 10_000
    time_limit_minutes: float | None = None  # stop (and save) early when this is reached
    batch_size: int = 64
    lr_g: float = 1e-4  # a quarter of lr_d: at equal rates (2e-4) D sat at hinge loss 2.0
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.99
    ema_decay: float = 0.999  # generator weights averaged for sampling
    ema_start: int = 500  # steps before the average starts (it copies the weights until then)
    # batches of 256 fakes that recompute the averaged generator's batch-norm statistics when
    # training ends (0: keep the raw generator's); see gan.networks.standing_statistics
    standing_stats_batches: int = 0
    # uniform: rare classes as often as common ones; natural: as often as in the data; sqrt:
    # in proportion to the square root of the class's size, in between
    class_sampling: Literal["uniform", "natural", "sqrt"] = "uniform"
    # real faces flipped left-right half the time (StyleGAN2-ADA's --mirror): disgust's 436
    # faces become 872. Off here so that configs written before it load as they ran; the
    # profiles and configs/gan.yaml turn it on
    mirror: bool = False
    augment_p: float | None = None  # fixed augmentation probability; None: adaptive (ADA)
    ada_per_class: bool = False  # each class its own adaptive p (rare classes overfit first)
    # per class: p moves by the class's own images ("own_images") or by every image of the
    # interval ("all_images": a rare class's p as fast as a shared one)
    ada_class_clock: Literal["own_images", "all_images"] = "own_images"
    ada_target: float = 0.6
    ada_speed_images: int = 100_000  # images for p to move by 1
    seed: int = 0
    device: str = "auto"
    precision: Literal["bf16", "fp32"] = "bf16"
    num_threads: int | None = None
    log_every: int = 100
    sample_every: int = 1000  # sample grid (one row per emotion, fixed seeds)
    checkpoint_every: int = 1000
    max_rollbacks: int = 3  # NaN/inf losses roll back to the last checkpoint this many times


@dataclass
class FidelityConfig:
    """How cheaply the search scores one particle (``ganpso.pipeline.objective``).

    ``scratch`` trains a narrower copy of the classifier (``width``) from a fixed initialisation
    for ``epochs`` on a stratified ``real_fraction`` of Training plus the particle's fakes.
    ``finetune`` continues the shared real-data classifier instead, at ``lr x lr_scale``: cheaper,
    but its ranking disagreed with full training (GAN images hurt a trunk that had converged
    without them; results/run-default/replaced-finetune-fidelity/fidelity-agreement.json).
    """

    mode: Literal["scratch", "finetune"] = "scratch"
    epochs: int = 4
    real_fraction: float = 0.5  # stratified share of Training used
    width: int = 16  # scratch: the model's width at this fidelity
    lr_scale: float = 0.1  # finetune: starts from trained weights, so a tenth of the peak lr
    seed: int = 0


@dataclass
class SearchConfig(YamlConfig):
    """``ganpso search``: what is searched, by which optimizer, evaluated where and how cheaply.

    ``space`` maps dotted ``TrainConfig`` keys to parameter specs (``ganpso.search.space``);
    ``pso`` holds ``PSOConfig`` fields.
    """

    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    optimizer: Literal["pso", "random", "tpe"] = "pso"
    pso: dict[str, Any] = field(default_factory=dict)
    iterations: int = 8
    batch_size: int = 10  # particles per iteration (the swarm size for PSO)
    seed: int = 0
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    pool_factor: int = 2  # candidates drawn per fake the largest ratio needs (room for the filter)
    # Multi-fidelity (ganpso.pipeline.rescore): the best distinct settings, and the base recipe
    # too if rescore_base, trained again with the full recipe; the best of those wins. 0: off.
    rescore_top_k: int = 0
    rescore_base: bool = True
    executor: Literal["sequential", "process", "ray"] = "sequential"
    workers: int = 1
    threads_per_worker: int | None = None
    ray_address: str | None = None
    gpus_per_worker: float = 0.0


@dataclass
class GanMetricsConfig:
    """The GAN quality stage of ``ganpso run`` (``ganpso.metrics.gan``)."""

    enabled: bool = True
    per_class: int = 1000  # fakes per class for FID/KID, near-copies and diversity
    cas_epochs: int = 12
    cas_per_class: int | None = None  # fakes per class for CAS; None: Training's size / 7
    cas_seeds: int = 1  # CAS classifiers trained (seeds 0..n-1), averaged: one run is noisy
    ratio_draws: int = 5  # draws of fakes over which disgust's FID/KID ratios are averaged


@dataclass
class RunConfig(YamlConfig):
    """``ganpso run``: one profile of the whole method, stage by stage.

    ``data``, ``seed`` and ``device`` are set once here and copied into every stage's config.
    ``classifier`` is both the real-data classifier's recipe and the base of the final training,
    which adds the searched settings and the GAN's faces.
    """

    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0
    device: str = "auto"
    classifier: TrainConfig = field(default_factory=TrainConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    gan_metrics: GanMetricsConfig = field(default_factory=GanMetricsConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

    def __post_init__(self) -> None:
        for stage in (self.classifier, self.gan):
            stage.data, stage.seed, stage.device = self.data, self.seed, self.device
        self.search.seed = self.seed
