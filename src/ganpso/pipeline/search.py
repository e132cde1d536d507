"""The pipeline search: pool of fakes, fitness, optimizer and executor, wired from one config.

``search_pipeline`` writes into ``out``: ``pool.npz`` (the fakes every particle picks from, drawn
and scored once), the runner's files (``evaluations.jsonl``, ``search-state.json``,
``history.json``, ``best.yaml``, ``convergence.png``) and, with ``rescore_top_k`` > 0, the full
trainings of the best settings and (``rescore_base``) of the base recipe (``rescore/``,
``rescore.json``, ``ganpso.pipeline.rescore``). It returns the chosen settings applied to the
base config, a ``TrainConfig`` that ``ganpso train --config`` accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.classifier.config import TrainConfig
from ganpso.data import load_dataset
from ganpso.errors import ConfigError
from ganpso.pipeline.balance import SyntheticPool, build_pool, synthetic_counts
from ganpso.pipeline.config import SearchConfig
from ganpso.pipeline.objective import (
    PipelineObjective,
    recipe_value,
    search_dataset,
    settings_config,
    stratified_fraction,
)
from ganpso.pipeline.rescore import RESCORE_DIR, FullTraining, rescore, top_candidates
from ganpso.search import SearchSpace
from ganpso.search.executors import Executor, build_executor
from ganpso.search.runner import CACHE_FILE, EvaluationCache, run_search
from ganpso.search.samplers import build_optimizer

RATIO_PREFIXES = ("synthetic.ratio", "synthetic.class_ratios.")


def largest_ratio(space: dict[str, dict[str, Any]], base: TrainConfig) -> float:
    """The highest top-up ratio any particle can ask for (the pool must hold enough fakes)."""
    highs = [float(spec["high"]) for key, spec in space.items() if key.startswith(RATIO_PREFIXES)]
    fixed = [base.synthetic.ratio, *base.synthetic.class_ratios.values()]
    return max([*highs, *fixed])


def ensure_pool(config: SearchConfig, base: TrainConfig, out: Path, log: Callable) -> Path:
    path = out / "pool.npz"
    if path.exists():
        return path
    ratio = largest_ratio(config.space, base)
    if ratio > 0 and not base.synthetic.generator:
        raise ConfigError("the search asks for synthetic images but synthetic.generator is unset")
    train = search_dataset(load_dataset(base.data))["Training"]
    real = stratified_fraction(train, config.fidelity.real_fraction, config.fidelity.seed)
    sizes = synthetic_counts(real.class_counts(), ratio, {}) * config.pool_factor
    if sizes.sum() == 0:
        pool = SyntheticPool([np.zeros((0, 48, 48), np.uint8)] * len(sizes), [np.zeros(0)] * 7)
    else:
        log(f"drawing and scoring {int(sizes.sum())} candidate fakes for the search's pool")
        pool = build_pool(base.synthetic, sizes, base.device if base.device != "auto" else "cpu")
    pool.save(path)
    return path


def start_positions(
    points: Sequence[dict[str, Any]], space: SearchSpace, base: TrainConfig
) -> np.ndarray | None:
    """``search.start_points`` as unit-cube positions ``(k, dim)``; None when there are none.

    A key a point leaves out takes its value in the base recipe with the point applied (so a
    class ratio left out follows the point's ``synthetic.ratio``); it must lie in the space.
    """
    positions = []
    for index, point in enumerate(points):
        where = f"search.start_points[{index}]"
        unknown = sorted(set(point) - set(space.names))
        if unknown:
            raise ConfigError(f"{where}: {', '.join(unknown)} not in search.space")
        try:
            recipe = settings_config(base, point)
            settings = {name: point.get(name, recipe_value(recipe, name)) for name in space.names}
            positions.append(space.encode(settings))
        except ConfigError as error:
            left_out = [name for name in space.names if name not in point]
            hint = f" (left out, so the base recipe's: {', '.join(left_out)})" if left_out else ""
            raise ConfigError(f"{where}: {error}{hint}") from None
    return np.array(positions) if positions else None


def search_pipeline(
    config: SearchConfig,
    *,
    base: TrainConfig,
    out: Path,
    log: Callable = print,
    trained: Sequence[Path] = (),
) -> TrainConfig:
    """Search ``config.space`` around ``base``; returns ``base`` with the best settings.

    ``trained``: finished full trainings that rescoring may reuse for a candidate of the same
    recipe (``ganpso run`` passes its real-data classifier, the base recipe without fakes).
    """
    if not config.space:
        raise ConfigError("search.space is empty: nothing to search")
    if "synthetic.truncation" in config.space:
        raise ConfigError(
            "search.space.synthetic.truncation: the search draws its fakes once (its pool), so "
            "truncation is fixed per search; set synthetic.truncation in the base recipe"
        )
    space = SearchSpace.from_dict(config.space)
    for key in config.space:
        settings_config(base, {key: space.decode(np.full(space.dim, 0.5))[key]})  # key valid?
    start = start_positions(config.start_points, space, base)
    out.mkdir(parents=True, exist_ok=True)
    pool = ensure_pool(config, base, out, log)
    objective = PipelineObjective(base, pool, config.fidelity, config.fitness)
    optimizer = build_optimizer(
        config.optimizer,
        dim=space.dim,
        iterations=config.iterations,
        batch_size=config.batch_size,
        seed=config.seed,
        pso_config=config.pso,
        start=start,
    )
    with build_executor(config.executor, **executor_options(config)) as executor:
        outcome = run_search(optimizer, space, objective, executor, out, log)
        if outcome.best_settings is None:
            raise ConfigError(f"{out}: every evaluation failed; see {out}/evaluations.jsonl")
        if config.rescore_top_k == 0:
            return settings_config(base, outcome.best_settings)
        return rescore_best(config, base, objective, executor, out, log, trained)


def rescore_best(
    config: SearchConfig,
    base: TrainConfig,
    objective: PipelineObjective,
    executor: Executor,
    out: Path,
    log: Callable,
    trained: Sequence[Path],
) -> TrainConfig:
    """The search's top settings (and the base recipe) trained in full; the best one's config."""
    base_proxy = None
    if config.rescore_base:  # the base recipe's own reduced-fidelity fitness, for the record
        base_proxy = executor.map(objective, [{}])[0].value
    rows = EvaluationCache(out / CACHE_FILE).rows.values()
    candidates = top_candidates(
        rows, config.rescore_top_k, with_base=config.rescore_base, base_proxy=base_proxy
    )
    # a worker process cannot pickle the caller's logger; it prints instead
    training_log = log if config.executor == "sequential" else print
    full = FullTraining(base, out / RESCORE_DIR, training_log, trained, config.fitness)
    winner = rescore(candidates, full, executor, out, log, folder_of=full.folder_of)
    return full.config(winner)


def executor_options(config: SearchConfig) -> dict[str, Any]:
    if config.executor == "sequential":
        return {}
    options: dict[str, Any] = {"workers": config.workers}
    if config.threads_per_worker:
        options["threads_per_worker"] = config.threads_per_worker
    if config.executor == "ray":
        options |= {"address": config.ray_address, "gpus_per_worker": config.gpus_per_worker}
    return options
