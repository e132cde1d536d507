"""Seed ensembles of the comparison's rows, from the PrivateTest probabilities their cells saved.

An ensemble row ``<method>_ensemble`` averages the class probabilities of the method's first
``size`` seeds (uniform weights: nothing is chosen, so nothing looks at the test images) and
predicts their argmax. ``size`` is the number of GAN-PSO's seeds, and only methods with at least
that many seeds get a row, so every ensemble costs the same at inference: GAN-PSO's ensemble
meets the baselines' at equal cost, never a single model. Its compute is the sum of its members'.

Example:
    >>> extra = seed_ensembles(Path("results/compare"), cells)  # doctest: +SKIP
    >>> [cell.method for cell in extra]  # doctest: +SKIP
    ['cnn_ensemble', 'ganpso_ensemble', 'oversample_ensemble', 'pso_no_gan_ensemble']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ganpso.metrics import build_metrics_report
from ganpso.pipeline.folders import PREDICTIONS_FILE, Cell
from ganpso.report.summary import group_by_method, on_gpu

ENSEMBLE_SUFFIX = "_ensemble"
METHOD = "ganpso"  # whose seed count sets every ensemble's size


def saved_probabilities(folder: Path) -> np.ndarray | None:
    """``(N, K)`` PrivateTest probabilities a cell saved, None when it saved labels only."""
    path = folder / PREDICTIONS_FILE
    if not path.exists():
        return None
    with np.load(path) as archive:
        return archive["probs"] if "probs" in archive.files else None


def ensemble_size(cells: Sequence[Cell]) -> int:
    """GAN-PSO's number of seeds: 0 (no ensembles) below two."""
    seeds = [c.seed for c in cells if c.method == METHOD and c.seed is not None]
    return len(seeds) if len(seeds) >= 2 else 0


def seed_ensembles(compare_dir: Path, cells: Sequence[Cell]) -> list[Cell]:
    """One ensemble cell per seeded method with enough seeds whose probabilities were saved."""
    size = ensemble_size(cells)
    if not size:
        return []
    ensembles = []
    for method, group in group_by_method(cells).items():
        members = sorted((c for c in group if c.seed is not None), key=lambda c: c.seed or 0)
        members = members[:size]
        if len(members) < size or method.endswith(ENSEMBLE_SUFFIX):
            continue
        folders = [Path(compare_dir) / method / f"seed{c.seed}" for c in members]
        probabilities = [saved_probabilities(folder) for folder in folders]
        if any(p is None for p in probabilities) or members[0].y_true is None:
            continue
        ensembles.append(ensemble_cell(method, members, probabilities))  # type: ignore[arg-type]
    return ensembles


def ensemble_cell(method: str, members: Sequence[Cell], probabilities: list[np.ndarray]) -> Cell:
    y_true = members[0].y_true
    assert y_true is not None
    y_pred = np.mean(probabilities, axis=0).argmax(axis=1)
    devices = sorted({str(c.run.get("device") or "") for c in members} - {""})
    walls = {"cpu": 0.0, "gpu": 0.0}
    for cell in members:
        kind = "gpu" if on_gpu(cell) else "cpu"
        walls[kind] += float(cell.run.get("wall_seconds") or 0.0)
    seeds = [c.seed for c in members]
    metrics = build_metrics_report(
        y_true,
        y_pred,
        split="PrivateTest",
        device="; ".join(devices),
        seconds=0.0,
        command=f"uniform mean of the PrivateTest probabilities of {method} seeds {seeds}",
    )
    run = {
        "device": "; ".join(devices),
        "members": seeds,
        "cpu_seconds": walls["cpu"] or None,  # its members' trainings, on each kind of device
        "gpu_seconds": walls["gpu"] or None,
    }
    return Cell(f"{method}{ENSEMBLE_SUFFIX}", None, metrics, y_true, y_pred, run)
