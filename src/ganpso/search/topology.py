"""Swarm topologies: who each particle learns from, behind one method and a registry.

A topology answers a single question: given every particle's personal-best loss (lower is
better; the swarm converts maximisation to minimisation before asking), which particle's personal
best should particle ``i`` be pulled towards? ``global`` answers "the best of the swarm" (fast,
greedy); ``ring`` answers "the best among my ``k`` ring neighbours" (slower information flow,
keeps several basins alive longer, more robust on multimodal landscapes).

Example:
    >>> ring = build_topology("ring", swarm_size=5, neighbourhood_size=3)
    >>> ring.best_neighbour(np.array([5.0, 1.0, 4.0, 3.0, 2.0])).tolist()
    [1, 1, 1, 4, 4]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from ganpso.errors import ConfigError


class Topology(ABC):
    """The interface every topology implements."""

    @abstractmethod
    def best_neighbour(self, pbest_losses: np.ndarray) -> np.ndarray:
        """``(n,)`` personal-best losses -> ``(n,)`` index of each particle's best neighbour."""


class GlobalTopology(Topology):
    """Every particle sees the whole swarm (gbest PSO)."""

    def best_neighbour(self, pbest_losses: np.ndarray) -> np.ndarray:
        return np.full(len(pbest_losses), int(np.argmin(pbest_losses)))


class RingTopology(Topology):
    """Particle ``i`` sees the ``k`` particles of the index ring centred on itself (lbest PSO).

    ``k = 3`` is the classic lbest ring (left neighbour, itself, right neighbour); an even ``k``
    takes one more particle on the right. ``k >= swarm size`` is the global topology.
    """

    def __init__(self, swarm_size: int, neighbourhood_size: int) -> None:
        k = min(neighbourhood_size, swarm_size)
        offsets = np.arange(-((k - 1) // 2), k // 2 + 1)  # (k,)
        self._members = (np.arange(swarm_size)[:, None] + offsets[None, :]) % swarm_size  # (n, k)

    def best_neighbour(self, pbest_losses: np.ndarray) -> np.ndarray:
        local = np.argmin(pbest_losses[self._members], axis=1)  # (n,) position within each row
        return self._members[np.arange(len(self._members)), local]


TopologyFactory = Callable[[int, int], Topology]
_REGISTRY: dict[str, TopologyFactory] = {
    "global": lambda swarm_size, neighbourhood_size: GlobalTopology(),
    "ring": RingTopology,
}


def register_topology(name: str) -> Callable[[TopologyFactory], TopologyFactory]:
    """Add a topology: the factory takes ``(swarm_size, neighbourhood_size)``."""

    def add(factory: TopologyFactory) -> TopologyFactory:
        _REGISTRY[name] = factory
        return factory

    return add


def list_topologies() -> list[str]:
    return sorted(_REGISTRY)


def build_topology(name: str, swarm_size: int, neighbourhood_size: int = 3) -> Topology:
    """Build a registered topology; an unknown name fails listing the valid ones."""
    if name not in _REGISTRY:
        raise ConfigError(f"topology {name!r} is unknown; valid topologies: {list_topologies()}")
    return _REGISTRY[name](swarm_size, neighbourhood_size)
