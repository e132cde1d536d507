"""Baselines for the swarm behind the same ask / tell interface: random search, Optuna's TPE
and nevergrad's CMA-ES.

Each sampler proposes ``batch_size`` unit-cube points per iteration (the swarm's ``swarm_size``)
for ``iterations`` iterations, so every optimizer gets the same budget of evaluations. As with
:class:`~ganpso.search.pso.ParticleSwarm`, ``ask()`` returns the iteration's points not yet told
(the same ones until they are), ``tell(trial, value)`` takes ``None`` / NaN / inf as a failure,
and ``state_dict()`` is plain JSON that resumes the search exactly where it stopped.

- ``random``: uniform points from a seeded generator.
- ``tpe``: Optuna's Tree-structured Parzen Estimator (the optional extra ``ganpso[optuna]``). Its
  state is the list of told ``(position, value)`` pairs, re-added to a fresh study on load; the
  sampler is re-seeded from ``(seed, iteration)`` every iteration, so a resumed search proposes
  the same points as an uninterrupted one.
- ``cma``: nevergrad's CMA-ES (the optional extra ``ganpso[nevergrad]``); its state is the told
  values, replayed into a fresh optimizer on load.

Example:
    >>> sampler = build_optimizer("random", dim=2, iterations=3, batch_size=4, seed=0)
    >>> while not sampler.done:
    ...     for trial in sampler.ask():
    ...         sampler.tell(trial, -float(np.sum((trial.position - 0.5) ** 2)))
    >>> len(sampler.history), sampler.best_value <= 0
    (3, True)
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from ganpso.errors import CheckpointError, ConfigError
from ganpso.search.optimizer import Optimizer, Trial, check_start
from ganpso.search.pso import ParticleSwarm, PSOConfig

STATE_VERSION = 1
Direction = Literal["maximize", "minimize"]


class BatchSampler(ABC):
    """Bookkeeping shared by the samplers; subclasses only ``_propose`` (and maybe ``_observe``)."""

    kind = "batch"

    def __init__(
        self,
        dim: int,
        iterations: int,
        batch_size: int,
        seed: int = 0,
        direction: Direction = "maximize",
        start: np.ndarray | None = None,
    ) -> None:
        """``start``: ``(k, dim)`` points the first iteration evaluates before its proposals."""
        if dim < 1 or iterations < 1 or batch_size < 1:
            raise ConfigError(f"{self.kind}: dim, iterations and batch_size must be >= 1")
        if direction not in ("maximize", "minimize"):
            raise ConfigError(f"{self.kind}: direction {direction!r} is not maximize or minimize")
        self.dim, self.iterations, self.batch_size = dim, iterations, batch_size
        self.seed, self.direction = seed, direction
        self.start = check_start(start, dim, batch_size, self.kind)
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        self._positions: np.ndarray | None = None  # (batch_size, dim), the iteration's points
        self._told: dict[int, float | None] = {}  # index -> value, None = failed
        self._best: tuple[float, np.ndarray] | None = None  # (value, position)
        self._start()

    def _start(self) -> None:
        """Hook: a subclass's own state, set up once the shared one is."""
        return None

    @abstractmethod
    def _propose(self, n: int) -> np.ndarray:
        """``n`` new unit-cube points ``(n, dim)`` for the current iteration."""

    def _observe(self, positions: np.ndarray, values: list[float | None]) -> None:
        """Hook: the finished iteration's points ``(n, dim)`` and values, in index order."""
        return None

    # ask / tell -----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.iteration >= self.iterations

    def ask(self) -> list[Trial]:
        """The current iteration's points not yet told (the same ones until they are)."""
        if self.done:
            return []
        if self._positions is None:
            positions = np.clip(self._propose(self.batch_size), 0.0, 1.0)
            if self.iteration == 0 and self.start is not None:
                positions[: len(self.start)] = self.start  # TPE and CMA-ES proposed these too
            self._positions = positions
        return [
            Trial(i, self.iteration, self._positions[i].copy())
            for i in range(self.batch_size)
            if i not in self._told
        ]

    def tell(self, trial: Trial, value: float | None) -> None:
        """Report ``trial``'s value; NaN, inf or None mean the evaluation failed."""
        if self.done or self._positions is None:
            raise ValueError("tell: nothing was asked")
        if trial.iteration != self.iteration:
            raise ValueError(
                f"tell: trial is from iteration {trial.iteration}, sampler is at {self.iteration}"
            )
        if not 0 <= trial.particle < self.batch_size or trial.particle in self._told:
            raise ValueError(f"tell: trial {trial.particle} is unknown or already told")
        finite = value is not None and math.isfinite(float(value))
        self._told[trial.particle] = float(value) if finite else None
        if len(self._told) == self.batch_size:
            self._finish_iteration()

    @property
    def best_value(self) -> float | None:
        return None if self._best is None else self._best[0]

    @property
    def best_position(self) -> np.ndarray | None:
        return None if self._best is None else self._best[1].copy()

    # internals ------------------------------------------------------------------------------

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b

    def _finish_iteration(self) -> None:
        assert self._positions is not None
        values = [self._told[i] for i in range(self.batch_size)]
        for position, value in zip(self._positions, values, strict=True):  # index order: ties
            if value is not None and (self._best is None or self._better(value, self._best[0])):
                self._best = (value, position.copy())
        self._observe(self._positions, values)
        self._record(values)
        self._positions, self._told = None, {}
        self.iteration += 1

    def _record(self, values: list[float | None]) -> None:
        assert self._positions is not None
        finite = [v for v in values if v is not None]
        centroid = self._positions.mean(axis=0)  # (dim,)
        self.history.append(
            {
                "iteration": self.iteration,
                "best": self.best_value,
                "mean": float(np.mean(finite)) if finite else None,
                "spread": float(np.linalg.norm(self._positions - centroid, axis=1).mean()),
                "failed": len(values) - len(finite),
            }
        )

    # state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as plain JSON-able types."""
        return {
            "version": STATE_VERSION,
            "kind": self.kind,
            "setup": self._setup(),
            "iteration": self.iteration,
            "positions": None if self._positions is None else self._positions.tolist(),
            "told": [[i, v] for i, v in sorted(self._told.items())],
            "best": None if self._best is None else [self._best[0], self._best[1].tolist()],
            "history": [dict(h) for h in self.history],
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; points already told are not asked again."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise CheckpointError(f"{self.kind} state: expected version {STATE_VERSION}")
        if state.get("kind") != self.kind or state.get("setup") != self._setup():
            raise CheckpointError(f"{self.kind} state: saved by a different sampler or setup")
        self.iteration = int(state["iteration"])
        positions = state["positions"]
        self._positions = None if positions is None else np.array(positions, dtype=float)
        self._told = {int(i): v for i, v in state["told"]}
        best = state["best"]
        self._best = None if best is None else (float(best[0]), np.array(best[1], dtype=float))
        self.history = [dict(h) for h in state["history"]]
        self._load_extra(state["extra"])

    def _setup(self) -> dict[str, Any]:
        setup = {
            "dim": self.dim,
            "iterations": self.iterations,
            "batch_size": self.batch_size,
            "direction": self.direction,
        }
        return setup | ({} if self.start is None else {"start": self.start.tolist()})

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, extra: dict[str, Any]) -> None:
        return None


class RandomSearch(BatchSampler):
    """Uniform random points in the unit cube, ``batch_size`` per iteration."""

    kind = "random"

    def _start(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def _propose(self, n: int) -> np.ndarray:
        return self.rng.random((n, self.dim))

    def _extra_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def _load_extra(self, extra: dict[str, Any]) -> None:
        self.rng.bit_generator.state = extra["rng"]


class TPESampler(BatchSampler):
    """Optuna's TPE on ``dim`` coordinates ``x0 .. x{dim-1}`` in [0, 1].

    A batch is asked before any of it is told; the constant liar makes TPE treat the batch's
    earlier points as running, so the batch spreads out instead of repeating one point. Failed
    evaluations are told as FAIL, which TPE leaves out of its model.
    """

    kind = "tpe"

    def __init__(
        self,
        dim: int,
        iterations: int,
        batch_size: int,
        seed: int = 0,
        direction: Direction = "maximize",
        start: np.ndarray | None = None,
        n_startup_trials: int = 10,
    ) -> None:
        super().__init__(dim, iterations, batch_size, seed, direction, start)
        self._optuna = _import_optuna()
        self._optuna.logging.set_verbosity(self._optuna.logging.WARNING)  # no line per trial
        self.n_startup_trials = n_startup_trials
        self._observations: list[tuple[list[float], float | None]] = []  # told, in order
        self._pending: list[Any] | None = None  # optuna trials of the current batch
        self._study = self._new_study()

    @property
    def _distributions(self) -> dict[str, Any]:
        uniform = self._optuna.distributions.FloatDistribution(0.0, 1.0)
        return {f"x{d}": uniform for d in range(self.dim)}

    def _new_study(self) -> Any:
        return self._optuna.create_study(direction=self.direction)

    def _tpe(self) -> Any:
        """A TPE sampler seeded from (seed, iteration): resuming needs no sampler RNG state."""
        seed = int(np.random.SeedSequence([self.seed, self.iteration]).generate_state(1)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self._optuna.exceptions.ExperimentalWarning)
            return self._optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=self.n_startup_trials, constant_liar=True
            )

    def _propose(self, n: int) -> np.ndarray:
        self._study.sampler = self._tpe()
        distributions = self._distributions
        if self.iteration == 0 and self.start is not None:  # asked first, so told as themselves
            for point in self.start:
                self._study.enqueue_trial({f"x{d}": float(x) for d, x in enumerate(point)})
        self._pending = [self._study.ask(distributions) for _ in range(n)]
        return np.array([[t.params[name] for name in distributions] for t in self._pending])

    def _observe(self, positions: np.ndarray, values: list[float | None]) -> None:
        for i, (position, value) in enumerate(zip(positions.tolist(), values, strict=True)):
            if self._pending is not None:
                self._tell(self._pending[i], value)
            else:  # proposed before a resume: the asked optuna trials are gone
                self._add(position, value)
            self._observations.append((position, value))
        self._pending = None

    def _tell(self, trial: Any, value: float | None) -> None:
        state = self._optuna.trial.TrialState
        if value is None:
            self._study.tell(trial, state=state.FAIL)
        else:
            self._study.tell(trial, value)

    def _add(self, position: list[float], value: float | None) -> None:
        state = self._optuna.trial.TrialState
        params = {f"x{d}": float(x) for d, x in enumerate(position)}
        self._study.add_trial(
            self._optuna.trial.create_trial(
                params=params,
                distributions=self._distributions,
                value=value,
                state=state.FAIL if value is None else state.COMPLETE,
            )
        )

    def _setup(self) -> dict[str, Any]:
        return super()._setup() | {"n_startup_trials": self.n_startup_trials}

    def _extra_state(self) -> dict[str, Any]:
        return {"observations": [[p, v] for p, v in self._observations]}

    def _load_extra(self, extra: dict[str, Any]) -> None:
        self._study, self._observations, self._pending = self._new_study(), [], None
        for position, value in extra["observations"]:
            self._add(position, value)
            self._observations.append((position, value))


class CMASampler(BatchSampler):
    """Nevergrad's CMA-ES on ``dim`` coordinates in [0, 1], one ask / tell per iteration.

    The batch is asked at once and told in index order when it is complete. Nevergrad seeds from
    ``seed`` and asks deterministically, so the state is the told values per iteration: a
    resumed search rebuilds the optimizer by replaying every finished iteration's asks and
    tells, and proposes what an uninterrupted one would. Nevergrad minimises: a maximised value
    is told negated. A failure is not told.
    """

    kind = "cma"

    def _start(self) -> None:
        self._nevergrad = _import_nevergrad()
        self._told_values: list[list[float | None]] = []  # per finished iteration, index order
        self._cma: Any = None
        self._asked: list[Any] | None = None  # the current iteration's nevergrad candidates

    def _new_cma(self) -> Any:
        """A fresh optimizer with every finished iteration replayed into it."""
        ng = self._nevergrad
        cube = ng.p.Array(shape=(self.dim,), lower=0.0, upper=1.0)
        cube.random_state = np.random.RandomState(self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nevergrad warns about budgets and bounds it handles
            cma = ng.optimizers.CMA(
                parametrization=cube,
                budget=self.iterations * self.batch_size,
                num_workers=self.batch_size,
            )
            for point in [] if self.start is None else self.start:  # the first asks return them
                cma.suggest(point)
            for values in self._told_values:
                self._tell_batch(cma, [cma.ask() for _ in values], values)
        return cma

    def _tell_batch(self, cma: Any, asked: list[Any], values: list[float | None]) -> None:
        sign = -1.0 if self.direction == "maximize" else 1.0
        for candidate, value in zip(asked, values, strict=True):
            if value is not None:
                cma.tell(candidate, sign * value)

    def _propose(self, n: int) -> np.ndarray:
        if self._cma is None:
            self._cma = self._new_cma()
        self._asked = [self._cma.ask() for _ in range(n)]
        return np.array([candidate.value for candidate in self._asked])

    def _observe(self, positions: np.ndarray, values: list[float | None]) -> None:
        if self._asked is None:  # asked before a resume: ask the same batch again
            self._propose(len(values))
        assert self._asked is not None
        self._tell_batch(self._cma, self._asked, values)
        self._told_values.append(list(values))
        self._asked = None

    def _extra_state(self) -> dict[str, Any]:
        return {"told_values": [list(values) for values in self._told_values]}

    def _load_extra(self, extra: dict[str, Any]) -> None:
        self._told_values = [list(values) for values in extra["told_values"]]
        self._cma, self._asked = None, None


def _import_nevergrad() -> Any:
    try:
        import nevergrad
    except ImportError:
        raise ConfigError(
            "optimizer 'cma' needs nevergrad: pip install 'ganpso[nevergrad]'"
        ) from None
    return nevergrad


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("optimizer 'tpe' needs Optuna: pip install 'ganpso[optuna]'") from None
    return optuna


OptimizerName = Literal["pso", "random", "tpe", "cma"]


_SAMPLERS: dict[str, type[BatchSampler]] = {
    "random": RandomSearch,
    "tpe": TPESampler,
    "cma": CMASampler,
}


def list_optimizers() -> list[str]:
    return sorted(["pso", *_SAMPLERS])


def build_optimizer(
    name: OptimizerName,
    dim: int,
    iterations: int,
    batch_size: int,
    seed: int = 0,
    pso_config: PSOConfig | None = None,
    direction: Direction | None = None,
    start: np.ndarray | None = None,
) -> Optimizer:
    """An optimizer with a budget of ``iterations * batch_size`` evaluations.

    ``pso_config`` tunes the swarm; its ``swarm_size``, ``iterations`` and ``seed`` are replaced
    by the arguments here so that every optimizer gets the same budget. ``direction`` defaults
    to the PSO config's (maximize). ``start``: ``(k, dim)`` unit-cube points, ``k <=
    batch_size``, that the first iteration evaluates in place of its first proposals.

    Example:
        >>> build_optimizer("pso", dim=3, iterations=5, batch_size=4).config.swarm_size
        4
    """
    if name not in list_optimizers():
        raise ConfigError(f"optimizer {name!r} is unknown; valid optimizers: {list_optimizers()}")
    pso = pso_config or PSOConfig()
    direction = direction or pso.direction
    if name == "pso":
        config = replace(
            pso, swarm_size=batch_size, iterations=iterations, seed=seed, direction=direction
        )
        return ParticleSwarm(dim, config, start=start)
    return _SAMPLERS[name](dim, iterations, batch_size, seed, direction, start)
