"""Hyper-parameter search: a mixed search space in the unit cube, an ask / tell PSO and its
baselines (random search, TPE), executors (sequential, process pool, Ray) and the runner."""

from ganpso.search.executors import (
    Executor,
    Outcome,
    ProcessPoolExecutor,
    RayExecutor,
    SequentialExecutor,
    build_executor,
    list_executors,
)
from ganpso.search.optimizer import Optimizer, Trial
from ganpso.search.pso import (
    ParticleSwarm,
    PSOConfig,
    SearchResult,
    constriction_factor,
    optimize,
)
from ganpso.search.runner import SearchOutcome, plot_convergence, run_search, settings_key
from ganpso.search.samplers import (
    BatchSampler,
    RandomSearch,
    TPESampler,
    build_optimizer,
    list_optimizers,
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
    "BatchSampler",
    "ChoiceParam",
    "Executor",
    "FloatParam",
    "GlobalTopology",
    "IntParam",
    "Optimizer",
    "Outcome",
    "PSOConfig",
    "Param",
    "ParticleSwarm",
    "ProcessPoolExecutor",
    "RandomSearch",
    "RayExecutor",
    "RingTopology",
    "SearchOutcome",
    "SearchResult",
    "SearchSpace",
    "SequentialExecutor",
    "TPESampler",
    "Topology",
    "Trial",
    "build_executor",
    "build_optimizer",
    "build_topology",
    "constriction_factor",
    "list_executors",
    "list_optimizers",
    "list_topologies",
    "optimize",
    "plot_convergence",
    "register_topology",
    "run_search",
    "settings_key",
]
