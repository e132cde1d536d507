"""The interface every optimizer of the search offers: ask for trials, tell their values.

The optimizer never calls the objective itself. ``ask()`` returns the iteration's unit-cube
points not yet told (the same ones until they are), ``tell(trial, value)`` takes ``None`` / NaN
/ inf as a failed evaluation, and ``state_dict()`` is plain JSON that resumes the search exactly
where it stopped. ``ParticleSwarm`` (``pso.py``) and the samplers (``samplers.py``) implement it;
``runner.run_search`` drives any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


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
