"""The interface every optimizer of the search offers: ask for trials, tell their values.

The optimizer never calls the objective itself. ``ask()`` returns the iteration's unit-cube
points not yet told (the same ones until they are), ``tell(trial, value)`` takes ``None`` / NaN
/ inf as a failed evaluation, and ``state_dict()`` is plain JSON that resumes the search exactly
where it stopped. ``ParticleSwarm`` (``pso.py``) and the samplers (``samplers.py``) implement it;
``runner.run_search`` drives any of them.

Every optimizer can be given start points: unit-cube points its first iteration evaluates in
place of its first proposals (known recipes, a previous search's best), so the search sees them
at the same fidelity as everything else. The rest of that iteration is the optimizer's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ganpso.errors import ConfigError


@dataclass(frozen=True)
class Trial:
    """One point to evaluate: ``position`` is a unit-cube point ``(dim,)``."""

    particle: int
    iteration: int
    position: np.ndarray = field(compare=False)


class Optimizer(Protocol):
    """What the search runner needs: ParticleSwarm and the samplers here all provide it."""

    iteration: int
    history: list[dict[str, Any]]

    @property
    def done(self) -> bool: ...

    @property
    def best_value(self) -> float | None: ...

    @property
    def best_position(self) -> np.ndarray | None: ...

    def ask(self) -> list[Trial]: ...

    def tell(self, trial: Trial, value: float | None) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def check_start(start: Any, dim: int, batch_size: int, where: str) -> np.ndarray | None:
    """Start points as a ``(k, dim)`` array with ``1 <= k <= batch_size`` and values in [0, 1].

    ``None`` or an empty sequence means no start points.
    """
    if start is None or len(start) == 0:
        return None
    points = np.array(start, dtype=float)
    if points.ndim != 2 or points.shape[1] != dim:
        raise ConfigError(f"{where}: start points must have shape (k, {dim}), got {points.shape}")
    if len(points) > batch_size:
        raise ConfigError(
            f"{where}: {len(points)} start points, more than the {batch_size} evaluated per "
            "iteration"
        )
    if not np.isfinite(points).all() or points.min() < 0.0 or points.max() > 1.0:
        raise ConfigError(f"{where}: start points must lie in the unit cube [0, 1]^{dim}")
    return points
