"""The PSO fitness: a particle's pipeline settings -> PublicTest fitness at reduced fidelity.

A particle is a dict of dotted ``TrainConfig`` keys (``synthetic.ratio``, ``lr``, ...). A full
training costs far more than a search can pay per particle, so each evaluation trains at reduced
fidelity (``FidelityConfig``): the settings' whole recipe (class weighting and sampling included)
on a model of ``width`` (or the particle's own) from the same initialisation for every particle,
for ``epochs`` (or a fraction of the particle's own, the one-cycle schedule compressed), on a
fixed stratified ``real_fraction`` of Training plus the GAN faces the settings ask for; it scores
PublicTest after the last epoch, without test-time views, by the weighted mean of the five
measures that ``weights`` names (``ganpso.metrics.fitness``; by default all five alike).

Fakes come from a pool drawn and scored once per search, so an evaluation pays only for its
training. PrivateTest is never loaded: the dataset is cut to Training and PublicTest first.
"""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.classifier.config import TrainConfig
from ganpso.classifier.training import fit
from ganpso.data import FerDataset, Split, load_dataset
from ganpso.errors import ConfigError
from ganpso.metrics.fitness import DEFAULT_WEIGHTS, fitness
from ganpso.pipeline.balance import SyntheticPool, combine, synthetic_counts
from ganpso.pipeline.config import FidelityConfig

SEARCH_SPLITS = ("Training", "PublicTest")


def with_settings(raw: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with each dotted key of ``settings`` set (``synthetic.class_ratios.disgust``)."""
    merged = copy.deepcopy(raw)
    for key, value in settings.items():
        node = merged
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"setting {key!r}: {part} is not a config section")
        node[leaf] = value.item() if isinstance(value, np.generic) else value
    return merged


def settings_config(base: TrainConfig, settings: dict[str, Any]) -> TrainConfig:
    return TrainConfig.from_dict(with_settings(base.to_dict(), settings))


def recipe_value(base: TrainConfig, key: str) -> Any:
    """The value of dotted ``key`` in ``base``; None where the recipe has none.

    A class without its own ``synthetic.class_ratios`` entry is topped up to
    ``synthetic.ratio``, so that is its value.
    """
    node: Any = base.to_dict()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if key.startswith("synthetic.class_ratios."):
                return base.synthetic.ratio
            return None
        node = node[part]
    return node


def missing_measures(row: dict[str, float], weights: dict[str, float]) -> list[str]:
    """The weighed measures a history row lacks (one made before the five-measure fitness)."""
    return [name for name in weights if f"val/{name}" not in row]


def row_fitness(row: dict[str, float], weights: dict[str, float], where: str) -> float:
    """The fitness of one epoch's history row; a row from before the five measures says so."""
    missing = missing_measures(row, weights)
    if missing:
        raise ConfigError(
            f"{where}: its history has no {', '.join(missing)} (trained before the five-measure "
            "fitness); set search.fitness to {macro_f1: 1} or train it again"
        )
    return fitness({name: row[f"val/{name}"] for name in weights}, weights)


def search_dataset(dataset: FerDataset) -> FerDataset:
    """Only the splits a search may look at."""
    return FerDataset({s: dataset[s] for s in SEARCH_SPLITS}, dataset.source)


def stratified_fraction(split: Split, fraction: float, seed: int) -> Split:
    """The same ``fraction`` of every class, drawn once per seed."""
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(split.labels):
        members = np.flatnonzero(split.labels == label)
        keep.append(rng.permutation(members)[: max(1, math.ceil(fraction * len(members)))])
    index = np.sort(np.concatenate(keep))
    return Split(split.images[index], split.labels[index])


class PipelineObjective:
    """Picklable fitness: workers load the data (cached on disk) and pool themselves."""

    def __init__(
        self,
        base: TrainConfig,
        pool: Path,
        fidelity: FidelityConfig,
        weights: dict[str, float] | None = None,
    ) -> None:
        self.base, self.pool_path, self.fidelity = base, pool, fidelity
        self.weights = dict(DEFAULT_WEIGHTS) if weights is None else weights
        self._data: tuple[Split, Split, SyntheticPool] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_data": None}

    def data(self) -> tuple[Split, Split, SyntheticPool]:
        if self._data is None:
            dataset = search_dataset(load_dataset(self.base.data))
            real = stratified_fraction(
                dataset["Training"], self.fidelity.real_fraction, self.fidelity.seed
            )
            self._data = (real, dataset["PublicTest"], SyntheticPool.load(self.pool_path))
        return self._data

    def training_split(self, config: TrainConfig) -> Split:
        real, _, pool = self.data()
        synthetic = config.synthetic
        counts = synthetic_counts(real.class_counts(), synthetic.ratio, synthetic.class_ratios)
        fakes = [pool.select(k, int(n), synthetic.filter_confidence) for k, n in enumerate(counts)]
        return combine(real, fakes, synthetic.weight)

    def __call__(self, settings: dict[str, Any]) -> float:
        config = settings_config(self.base, settings)
        train = self.training_split(config)
        _, public, _ = self.data()
        raw = config.to_dict()
        if self.fidelity.width is not None:
            raw["model"]["width"] = self.fidelity.width
        epochs = self.fidelity.epochs_for(config.epochs)
        raw |= {"epochs": epochs, "seed": self.fidelity.seed, "tta": False}
        raw["synthetic"]["generator"] = None  # the pool's faces are already in ``train``
        small = TrainConfig.from_dict(raw)
        dataset = FerDataset({"Training": train, "PublicTest": public}, "search")
        with tempfile.TemporaryDirectory() as folder:
            result = fit(small, dataset, folder, log=lambda _: None)
        return row_fitness(result.history[-1], self.weights, "reduced-fidelity training")
