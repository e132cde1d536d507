"""Configs of the pipeline: the search (``ganpso search``) and the whole run (``ganpso run``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Self

from ganpso.classifier.config import TrainConfig
from ganpso.config import YamlConfig, bounded
from ganpso.data.config import DataConfig
from ganpso.errors import ConfigError
from ganpso.gan.config import GanConfig, GanMetricsConfig
from ganpso.metrics.fitness import DEFAULT_WEIGHTS, check_weights
from ganpso.search import PSOConfig


@dataclass
class FidelityConfig:
    """How cheaply the search scores one particle (``ganpso.pipeline.objective``): a copy of the
    classifier trained from a fixed initialisation on a stratified ``real_fraction`` of Training
    plus the particle's fakes, for ``epochs`` (or ``epoch_fraction`` of the particle's own
    epochs, its one-cycle schedule compressed), at ``width`` (None: the particle's own)."""

    epochs: int = bounded(4, ge=1, le=100_000)
    # a fraction of the particle's epochs instead of a fixed count, for spaces that search the
    # epochs: the cheap rung that ranked 16 wide-space settings like full training
    # (results/search-space/) was 0.25
    epoch_fraction: float | None = bounded(None, gt=0, le=1)
    real_fraction: float = bounded(0.5, gt=0, le=1)  # stratified share of Training used
    width: int | None = bounded(16, ge=1, le=256)  # the model's width here; None: the particle's
    seed: int = bounded(0, ge=0)

    def epochs_for(self, particle_epochs: int) -> int:
        if self.epoch_fraction is None:
            return self.epochs
        return max(1, round(self.epoch_fraction * particle_epochs))


@dataclass
class SearchConfig(YamlConfig):
    """``ganpso search``: what is searched, by which optimizer, evaluated where and how cheaply.

    ``space`` maps dotted ``TrainConfig`` keys to parameter specs (``ganpso.search.space``);
    ``pso`` tunes the swarm. The swarm's size, length and seed are ``batch_size``,
    ``iterations`` and ``seed`` here, so ``pso`` must leave its own at their defaults.
    """

    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    # settings the first iteration evaluates in place of its first proposals, for every
    # optimizer alike (dotted keys of the space; a key left out takes its value in the base
    # recipe with the point applied), e.g. [{sampling: oversample}]: known recipes are judged at
    # the search's own fidelity
    start_points: list[dict[str, Any]] = field(default_factory=list)
    optimizer: Literal["pso", "random", "tpe", "cma"] = "pso"
    pso: PSOConfig = field(default_factory=PSOConfig)
    iterations: int = bounded(8, ge=1, le=100_000)
    batch_size: int = bounded(10, ge=1, le=100_000)  # particles per iteration (PSO's swarm size)
    seed: int = bounded(0, ge=0)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    # weights of the five PublicTest measures in the fitness (ganpso.metrics.fitness); by
    # default their plain mean; {macro_f1: 1} judges by macro-F1 alone
    fitness: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    # candidates drawn per fake that the largest ratio needs (room for the filter)
    pool_factor: int = bounded(2, ge=1, le=100)
    # Multi-fidelity (ganpso.pipeline.rescore): the best distinct settings, and the base recipe
    # too if rescore_base, trained again with the full recipe; the best of those wins. 0: off.
    rescore_top_k: int = bounded(0, ge=0)
    rescore_base: bool = True
    executor: Literal["sequential", "process", "ray"] = "sequential"
    workers: int = bounded(1, ge=1, le=10_000)
    threads_per_worker: int | None = bounded(None, ge=1, le=1024)
    ray_address: str | None = None
    gpus_per_worker: float = bounded(0.0, ge=0, le=64)

    def __post_init__(self) -> None:
        points = self.start_points
        if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
            raise ConfigError(
                f"search.start_points: expected a list of settings such as "
                f"[{{sampling: oversample}}], got {points!r}"
            )
        defaults = PSOConfig()
        for own, ours in (
            ("swarm_size", "batch_size"),
            ("iterations", "iterations"),
            ("seed", "seed"),
        ):
            if getattr(self.pso, own) != getattr(defaults, own):
                raise ConfigError(f"search.pso.{own}: set search.{ours} instead")

    def check(self, where: str) -> None:
        check_weights(self.fitness, f"{where}.fitness")


@dataclass
class RunConfig(YamlConfig):
    """``ganpso run``: one profile of the whole method, stage by stage.

    ``data``, ``seed`` and ``device`` are set once here and copied into every stage's config; a
    stage that sets one of them to something else is an error, not silently overwritten.
    ``classifier`` is both the real-data classifier's recipe and the base of the final training,
    which adds the searched settings and the GAN's faces.
    """

    data: DataConfig = field(default_factory=DataConfig)
    seed: int = bounded(0, ge=0)
    device: str = "auto"
    classifier: TrainConfig = field(default_factory=TrainConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    gan_metrics: GanMetricsConfig = field(default_factory=GanMetricsConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        check_run_wide_keys(raw)
        return super().from_dict(raw)

    def __post_init__(self) -> None:
        for stage in (self.classifier, self.gan):
            stage.data, stage.seed, stage.device = self.data, self.seed, self.device
        self.search.seed = self.seed


RUN_WIDE = {
    "classifier": ("data", "seed", "device"),
    "gan": ("data", "seed", "device"),
    "search": ("seed",),
}


def check_run_wide_keys(raw: dict[str, Any]) -> None:
    """A stage may repeat a run-wide key (a saved run's config does) but not contradict it."""
    defaults = {"data": DataConfig().__dict__, "seed": 0, "device": "auto"}
    for stage, keys in RUN_WIDE.items():
        section = raw.get(stage)
        if not isinstance(section, dict):
            continue
        for key in keys:
            if key not in section:
                continue
            run_wide = raw.get(key, defaults[key])
            if key == "data":
                run_wide = {**defaults["data"], **(run_wide or {})}
                given = {**defaults["data"], **(section[key] or {})}
            else:
                given = section[key]
            if given != run_wide:
                raise ConfigError(
                    f"{stage}.{key}: {section[key]!r} differs from the run's {key} "
                    f"{raw.get(key, defaults[key])!r}; a run sets {key} once, at the top level"
                )
