"""Hyper-parameter search: a mixed search space in the unit cube and an ask / tell PSO."""

from ganpso.search.pso import (
    ParticleSwarm,
    PSOConfig,
    SearchResult,
    Trial,
    constriction_factor,
    optimize,
)
from ganpso.search.space import ChoiceParam, FloatParam, IntParam, Param, SearchSpace
from ganpso.search.topology import (
    GlobalTopology,
    RingTopology,
    Topology,
    build_topology,
    list_topologies,
    register_topology,
)

__all__ = [
    "ChoiceParam",
    "FloatParam",
    "GlobalTopology",
    "IntParam",
    "PSOConfig",
    "Param",
    "ParticleSwarm",
    "RingTopology",
    "SearchResult",
    "SearchSpace",
    "Topology",
    "Trial",
    "build_topology",
    "constriction_factor",
    "list_topologies",
    "optimize",
    "register_topology",
]
