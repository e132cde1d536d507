"""The whole method: GAN balancing of Training, the PSO fitness, ``ganpso run`` and ``compare``."""

from ganpso.pipeline.balance import SyntheticPool, add_synthetic, synthetic_counts
from ganpso.pipeline.objective import PipelineObjective
from ganpso.pipeline.run import STAGES, run_pipeline

__all__ = [
    "STAGES",
    "PipelineObjective",
    "SyntheticPool",
    "add_synthetic",
    "run_pipeline",
    "synthetic_counts",
]
