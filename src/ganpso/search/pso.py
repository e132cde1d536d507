"""Particle Swarm Optimization in the unit cube with an ask / tell interface.

The swarm never calls the objective: ``ask()`` hands out the current iteration's particles,
``tell(trial, value)`` reports each result (in any order, possibly after a crash and a resume),
and once every particle of the iteration is told the swarm updates its bests and moves.

Update, per particle ``i`` and coordinate ``d`` (``r1, r2 ~ U(0, 1)`` drawn fresh each time)::

    v <- w v + c1 r1 (pbest_i - x) + c2 r2 (lbest_i - x)          (inertia weight, default)
    v <- chi (v + c1 r1 (pbest_i - x) + c2 r2 (lbest_i - x))      (Clerc's constriction)
         chi = 2 / |2 - phi - sqrt(phi^2 - 4 phi)|,  phi = c1 + c2 > 4
    v <- clip(v, -v_max, v_max)                                   (v_max = velocity_clamp)
    x <- x + v, then folded back into [0, 1] (reflect | clip | random)

``pbest_i`` is the particle's own best position, ``lbest_i`` the best personal best among its
neighbours (the topology: the whole swarm for ``global``, ``k`` particles for ``ring``). The
inertia ``w`` goes linearly from ``inertia_start`` to ``inertia_end`` over the iterations
(constant when they are equal). A failed evaluation (NaN, inf, an exception) counts as the worst
possible value: it never becomes a best and never stops the search.

Example:
    >>> config = PSOConfig(swarm_size=8, iterations=30, direction="minimize", seed=0)
    >>> result = optimize(lambda x: float(np.sum((x - 0.3) ** 2)), dim=3, config=config)
    >>> result.best_value < 1e-3
    True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Self

import numpy as np

from ganpso.config import build_config
from ganpso.errors import CheckpointError, ConfigError
from ganpso.search.optimizer import Trial, check_start
from ganpso.search.topology import build_topology, list_topologies

log = logging.getLogger(__name__)
STATE_VERSION = 1


@dataclass
class PSOConfig:
    """Swarm hyper-parameters; the defaults are one setting used for every problem."""

    swarm_size: int = 10
    iterations: int = 20  # evaluations = swarm_size * iterations
    direction: Literal["maximize", "minimize"] = "maximize"  # the pipeline maximises macro-F1
    # linear decrease: explore first, refine at the end (benchmarks/bench_pso.py compares the
    # schedules and clamps on standard test functions; results/pso-benchmark/)
    inertia_start: float = 0.8
    inertia_end: float = 0.3
    cognitive: float = 1.49618  # c1, pull towards the particle's own best
    social: float = 1.49618  # c2, pull towards the neighbourhood's best
    constriction: bool = False  # Clerc's chi replaces the inertia; needs cognitive + social > 4
    velocity_clamp: float | None = 0.1  # v_max as a fraction of each coordinate's range
    # reflect keeps the step length and stays inside; clip piles particles onto faces (the same
    # extreme setting evaluated again and again); random throws away the particle's history
    boundary: Literal["reflect", "clip", "random"] = "reflect"
    topology: str = "global"
    neighbourhood_size: int = 3  # ring: particles each one sees, itself included
    # Latin hypercube: every tenth of every coordinate holds one particle when swarm_size = 10
    init: Literal["lhs", "uniform"] = "lhs"
    seed: int = 0  # used when no generator is passed to ParticleSwarm

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        return build_config(cls, raw, "pso")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validate(config: PSOConfig) -> None:
    if config.swarm_size < 1 or config.iterations < 1:
        raise ConfigError("pso: swarm_size and iterations must be >= 1")
    if config.direction not in ("maximize", "minimize"):
        raise ConfigError(f"pso.direction: {config.direction!r} is not maximize or minimize")
    if config.boundary not in ("reflect", "clip", "random"):
        raise ConfigError(f"pso.boundary: {config.boundary!r} is not one of reflect, clip, random")
    if config.init not in ("lhs", "uniform"):
        raise ConfigError(f"pso.init: {config.init!r} is not one of lhs, uniform")
    if config.topology not in list_topologies():
        raise ConfigError(
            f"pso.topology: {config.topology!r} is unknown; valid topologies: {list_topologies()}"
        )
    if config.velocity_clamp is not None and config.velocity_clamp <= 0:
        raise ConfigError(f"pso.velocity_clamp: must be > 0 or null, got {config.velocity_clamp}")
    if config.neighbourhood_size < 1:
        raise ConfigError("pso.neighbourhood_size: must be >= 1")
    if config.constriction and config.cognitive + config.social <= 4:
        raise ConfigError(
            "pso.constriction: needs cognitive + social > 4 (e.g. 2.05 each), "
            f"got {config.cognitive + config.social:g}"
        )


def constriction_factor(cognitive: float, social: float) -> float:
    """Clerc's chi; 0.7298 for c1 = c2 = 2.05."""
    phi = cognitive + social
    return 2.0 / abs(2.0 - phi - math.sqrt(phi * phi - 4.0 * phi))


@dataclass
class SearchResult:
    """What ``optimize`` returns; values are in the config's direction."""

    best_position: np.ndarray | None
    best_value: float | None
    history: list[dict[str, Any]]
    evaluations: int
    failures: int


class ParticleSwarm:
    """A swarm of ``config.swarm_size`` particles in ``[0, 1]^dim``, driven by ask / tell.

    Example:
        >>> swarm = ParticleSwarm(2, PSOConfig(swarm_size=4, iterations=3, direction="minimize"))
        >>> while not swarm.done:
        ...     for trial in swarm.ask():
        ...         swarm.tell(trial, float(np.sum(trial.position**2)))
        >>> len(swarm.history), swarm.best_value >= 0
        (3, True)
    """

    def __init__(
        self,
        dim: int,
        config: PSOConfig | None = None,
        rng: np.random.Generator | None = None,
        start: np.ndarray | None = None,
    ) -> None:
        """``start``: ``(k, dim)`` points where the first ``k`` particles begin."""
        if dim < 1:
            raise ConfigError(f"pso: dim must be >= 1, got {dim}")
        self.dim = dim
        self.config = config or PSOConfig()
        self.start = check_start(start, dim, self.config.swarm_size, "pso")
        self.rng = rng if rng is not None else np.random.default_rng(self.config.seed)
        self.topology = build_topology(
            self.config.topology, self.config.swarm_size, self.config.neighbourhood_size
        )
        n = self.config.swarm_size
        self.iteration = 0
        self.positions = self._initial_positions()  # (n, dim)
        v0 = min(0.1, self.config.velocity_clamp or 0.1)  # small: the spread comes from x0
        self.velocities = self.rng.uniform(-v0, v0, size=(n, dim))  # (n, dim)
        self.pbest_positions = self.positions.copy()  # (n, dim)
        self.pbest_losses = np.full(n, np.inf)  # (n,) lower is better, inf = nothing yet
        self.history: list[dict[str, Any]] = []
        self._told: dict[int, float] = {}  # particle -> loss of the current iteration

    # ask / tell -----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.iteration >= self.config.iterations

    def ask(self) -> list[Trial]:
        """The current iteration's particles not yet told (the same ones until they are)."""
        if self.done:
            return []
        return [
            Trial(i, self.iteration, self.positions[i].copy())
            for i in range(self.config.swarm_size)
            if i not in self._told
        ]

    def tell(self, trial: Trial, value: float | None) -> None:
        """Report ``trial``'s objective value; NaN, inf or None mean the evaluation failed."""
        if self.done:
            raise ValueError("tell: the search is finished")
        if trial.iteration != self.iteration:
            raise ValueError(
                f"tell: trial is from iteration {trial.iteration}, swarm is at {self.iteration}"
            )
        if not 0 <= trial.particle < self.config.swarm_size or trial.particle in self._told:
            raise ValueError(f"tell: particle {trial.particle} is unknown or already told")
        self._told[trial.particle] = self._loss(value)
        if len(self._told) == self.config.swarm_size:
            self._finish_iteration()

    @property
    def best_value(self) -> float | None:
        """Best value found (in the config's direction); None until an evaluation succeeded."""
        loss = float(np.min(self.pbest_losses))
        return self._value(loss) if math.isfinite(loss) else None

    @property
    def best_position(self) -> np.ndarray | None:
        if not np.isfinite(self.pbest_losses).any():
            return None
        return self.pbest_positions[int(np.argmin(self.pbest_losses))].copy()

    # internals ------------------------------------------------------------------------------

    def _loss(self, value: float | None) -> float:
        """Objective value -> loss to minimise; a failed evaluation is the worst loss, inf."""
        if value is None or not math.isfinite(float(value)):
            return math.inf
        return -float(value) if self.config.direction == "maximize" else float(value)

    def _value(self, loss: float) -> float:
        return -loss if self.config.direction == "maximize" else loss

    def _initial_positions(self) -> np.ndarray:
        n = self.config.swarm_size
        if self.config.init == "uniform":
            positions = self.rng.random((n, self.dim))
        else:  # Latin hypercube: one particle per 1/n stratum of each coordinate, shuffled
            strata = np.stack([self.rng.permutation(n) for _ in range(self.dim)], axis=1)
            positions = (strata + self.rng.random((n, self.dim))) / n  # (n, dim)
        if self.start is not None:
            positions[: len(self.start)] = self.start
        return positions

    def _finish_iteration(self) -> None:
        losses = np.array([self._told[i] for i in range(self.config.swarm_size)])  # (n,)
        improved = losses < self.pbest_losses
        self.pbest_losses[improved] = losses[improved]
        self.pbest_positions[improved] = self.positions[improved]
        self._record(losses)
        self._told = {}
        self.iteration += 1
        if not self.done:
            self._move()

    def _record(self, losses: np.ndarray) -> None:
        finite = losses[np.isfinite(losses)]
        centroid = self.positions.mean(axis=0)  # (dim,)
        self.history.append(
            {
                "iteration": self.iteration,
                "best": self.best_value,
                "mean": self._value(float(finite.mean())) if finite.size else None,
                "spread": float(np.linalg.norm(self.positions - centroid, axis=1).mean()),
                "failed": int(losses.size - finite.size),
            }
        )

    def _inertia(self) -> float:
        """Linear schedule over the moves (iterations - 1 of them), start -> end."""
        cfg = self.config
        progress = (self.iteration - 1) / max(cfg.iterations - 2, 1)  # 0 at the first move
        return cfg.inertia_start + (cfg.inertia_end - cfg.inertia_start) * min(progress, 1.0)

    def _move(self) -> None:
        cfg, shape = self.config, self.positions.shape
        leaders = self.pbest_positions[self.topology.best_neighbour(self.pbest_losses)]  # (n, dim)
        r1, r2 = self.rng.random(shape), self.rng.random(shape)
        pull = cfg.cognitive * r1 * (self.pbest_positions - self.positions)
        pull += cfg.social * r2 * (leaders - self.positions)
        if cfg.constriction:
            velocities = constriction_factor(cfg.cognitive, cfg.social) * (self.velocities + pull)
        else:
            velocities = self._inertia() * self.velocities + pull
        if cfg.velocity_clamp is not None:
            velocities = np.clip(velocities, -cfg.velocity_clamp, cfg.velocity_clamp)
        self.positions, self.velocities = self._bound(self.positions + velocities, velocities)

    def _bound(self, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bring positions back into [0, 1] and adjust the velocities that took them out."""
        outside = (x < 0.0) | (x > 1.0)
        if self.config.boundary == "reflect":
            flips = np.floor(x).astype(int) % 2 == 1  # odd number of bounces reverses v
            folded = np.mod(x, 2.0)
            x = np.where(folded > 1.0, 2.0 - folded, folded)
            v = np.where(flips, -v, v)
        elif self.config.boundary == "clip":
            x, v = np.clip(x, 0.0, 1.0), np.where(outside, 0.0, v)  # absorbing walls
        else:
            x = np.where(outside, self.rng.random(x.shape), x)
            v = np.where(outside, 0.0, v)
        return np.clip(x, 0.0, 1.0), v

    # state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as plain JSON-able types (failed values are None)."""
        return {
            "version": STATE_VERSION,
            "dim": self.dim,
            "config": self.config.to_dict(),
            "iteration": self.iteration,
            "positions": self.positions.tolist(),
            "velocities": self.velocities.tolist(),
            "pbest_positions": self.pbest_positions.tolist(),
            "pbest_losses": [_json_float(x) for x in self.pbest_losses],
            "told": [[i, _json_float(loss)] for i, loss in sorted(self._told.items())],
            "history": [dict(h) for h in self.history],
            "rng": self.rng.bit_generator.state,
        } | ({} if self.start is None else {"start": self.start.tolist()})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; particles already told are not asked again."""
        self._check_state(state)
        self.iteration = int(state["iteration"])
        self.positions = np.array(state["positions"], dtype=float)
        self.velocities = np.array(state["velocities"], dtype=float)
        self.pbest_positions = np.array(state["pbest_positions"], dtype=float)
        self.pbest_losses = np.array([_from_json(x) for x in state["pbest_losses"]], dtype=float)
        self._told = {int(i): _from_json(loss) for i, loss in state["told"]}
        self.history = [dict(h) for h in state["history"]]
        self.rng.bit_generator.state = state["rng"]

    def _check_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise CheckpointError(f"swarm state: expected version {STATE_VERSION}")
        ours = {k: v for k, v in self.config.to_dict().items() if k != "seed"}  # rng is restored
        theirs = {k: v for k, v in state["config"].items() if k != "seed"}
        if state["dim"] != self.dim or theirs != ours:
            raise CheckpointError("swarm state: saved with a different dim or PSO config")
        if state.get("start") != (None if self.start is None else self.start.tolist()):
            raise CheckpointError("swarm state: saved with different start points")
        if np.array(state["positions"]).shape != (self.config.swarm_size, self.dim):
            raise CheckpointError("swarm state: positions do not match swarm_size x dim")
        if state["rng"].get("bit_generator") != type(self.rng.bit_generator).__name__:
            raise CheckpointError("swarm state: saved with a different random bit generator")


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _from_json(x: float | None) -> float:
    return math.inf if x is None else float(x)


def optimize(
    objective: Callable[[np.ndarray], float],
    dim: int,
    config: PSOConfig | None = None,
    rng: np.random.Generator | None = None,
    start: np.ndarray | None = None,
) -> SearchResult:
    """Run a whole search with ask / tell, calling ``objective(position)`` one particle at a time.

    An objective that raises is logged and told as a failure (the worst value).

    Example:
        >>> cfg = PSOConfig(iterations=5, direction="minimize")
        >>> optimize(lambda x: float(x.sum()), 2, cfg).evaluations
        50
    """
    swarm = ParticleSwarm(dim, config, rng, start)
    evaluations = failures = 0
    while not swarm.done:
        for trial in swarm.ask():
            value = _evaluate(objective, trial)
            evaluations += 1
            failures += value is None or not math.isfinite(value)
            swarm.tell(trial, value)
    return SearchResult(
        swarm.best_position, swarm.best_value, swarm.history, evaluations, int(failures)
    )


def _evaluate(objective: Callable[[np.ndarray], float], trial: Trial) -> float | None:
    try:
        return float(objective(trial.position))
    except Exception as exc:  # a crashed evaluation must not end the search
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning(
            "particle %d, iteration %d failed: %s", trial.particle, trial.iteration, message
        )
        return None
