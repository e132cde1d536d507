"""``comparison.json``: the comparison as data, for tables, plots and other programs.

One row per method with the mission's five measures on PrivateTest, each as the mean and sample
std over seeds and the pooled bootstrap 95 % interval (``summary``), and its compute: the mean
wall seconds of one seed's cell, CPU and GPU cells apart, plus, for the rows that need them,
the GAN's and the search's stages of the run (``STAGE_COSTS``), which all seeds share. Seed
ensembles (``ensembles``) add ``<method>_ensemble`` rows, and the run's ensemble of its rescored
trainings is ``ganpso_swarm_ensemble``. The tests compare each GAN-PSO row (``ganpso``,
``ganpso_ensemble``, ``ganpso_swarm_ensemble``) with the best baseline by macro-F1 and with the
plain CNN, of the same kind (single model or ensemble), on each measure: a paired bootstrap over
the test images and, with three or more common seeds, a paired t-test over seeds. The GAN's
own effect is tested too: ``gan_fixed`` against the plain CNN, with disgust's and fear's F1.

    {"rows": [{"method", "seeds", ["ensemble_of"], "accuracy": {"mean", "std", "ci"}, ...,
               "cpu_seconds", "gpu_seconds"}],
     "tests": [{"a", "b", "metric", "diff", "ci", "p", "p_ttest", "n_pairs"}],
     "best_baseline", "best_baseline_ensemble", "device", "command"}

Example:
    >>> data = comparison_data(load_cells(Path("results/compare")))  # doctest: +SKIP
    >>> data["rows"][0]["macro_f1"]["mean"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganpso.files import write_json_atomic
from ganpso.metrics.fitness import MEASURES
from ganpso.pipeline.folders import Cell, load_cells, read_stage_record
from ganpso.report.ensembles import ENSEMBLE_SUFFIX, seed_ensembles
from ganpso.report.summary import (
    group_by_method,
    on_gpu,
    paired_test,
    provenance,
    summarise,
)

COMPARISON_FILE = "comparison.json"
# the run's stages a method's compute includes besides its own cells (shared by its seeds)
STAGE_COSTS: dict[str, tuple[str, ...]] = {
    "gan_fixed": ("gan",),
    "pso_no_gan": ("search-nogan",),
    "random_search": ("search-random",),
    "ganpso": ("gan", "search"),
    "ganpso_swarm": ("gan", "search"),  # its members are the search's rescored trainings
}
CONTROL = "cnn"
# tests beside GAN-PSO's: the GAN's own effect (hand-set fakes against the plain CNN), on the
# five measures and the two rarest classes' F1
GAN_EFFECT = ("gan_fixed", CONTROL)
GAN_EFFECT_METRICS = (*MEASURES, "disgust_f1", "fear_f1")


def is_method_row(method: str) -> bool:
    """GAN-PSO's own rows: the method and its variants (``ganpso_ensemble``, ...)."""
    return method == "ganpso" or method.startswith("ganpso_")


def stage_seconds(run_dir: Path | None, method: str) -> float:
    """Wall seconds of the run's stages that ``method`` builds on (0 without a run folder)."""
    if run_dir is None:
        return 0.0
    total = 0.0
    for stage in STAGE_COSTS.get(method.removesuffix("_ensemble"), ()):
        record = read_stage_record(run_dir / stage)
        total += float((record or {}).get("seconds") or 0.0)
    return total


def mean_wall_seconds(cells: Sequence[Cell]) -> float | None:
    walls = [float(c.run["wall_seconds"]) for c in cells if c.run.get("wall_seconds") is not None]
    return sum(walls) / len(walls) if walls else None


def compute_seconds(cells: Sequence[Cell], stages: float) -> dict[str, float | None]:
    """One seed's cost on each kind of device: a GPU second is not a CPU second, so cells that
    ran on a GPU count apart; the run's stages (GAN, search) ran on the CPU. An ensemble's cell
    carries its members' seconds summed, per kind."""
    if len(cells) == 1 and "members" in cells[0].run:
        cpu, gpu = cells[0].run.get("cpu_seconds"), cells[0].run.get("gpu_seconds")
    else:
        cpu = mean_wall_seconds([c for c in cells if not on_gpu(c)])
        gpu = mean_wall_seconds([c for c in cells if on_gpu(c)])
    return {
        "cpu_seconds": round((cpu or 0.0) + stages, 1) if cpu is not None or stages else None,
        "gpu_seconds": None if gpu is None else round(gpu, 1),
    }


def measure(row: Any, name: str) -> dict[str, Any]:
    ci = row.ci95.get(name)
    return {
        "mean": round(row.mean[name], 4),
        "std": None if row.std[name] is None else round(row.std[name], 4),
        "ci": None if ci is None else [round(ci[0], 4), round(ci[1], 4)],
    }


def is_ensemble(method: str) -> bool:
    return method.endswith(ENSEMBLE_SUFFIX)


def best_baseline(rows: Sequence[Any], ensembles: bool = False) -> str | None:
    """The baseline with the best macro-F1 among single models, or among ensembles."""
    baselines = [
        row
        for row in rows
        if not is_method_row(row.method) and is_ensemble(row.method) == ensembles
    ]
    return max(baselines, key=lambda row: row.mean["macro_f1"]).method if baselines else None


def opponents(method: str, best: dict[bool, str | None], groups: dict[str, Any]) -> list[str]:
    """The best baseline and the plain CNN of the same kind (single model or ensemble): an
    ensemble meets ensembles of the same size, never a single model."""
    ensemble = is_ensemble(method)
    control = CONTROL + ENSEMBLE_SUFFIX if ensemble else CONTROL
    wanted = (best[ensemble], control)
    return list(dict.fromkeys(b for b in wanted if b in groups and b != method))


def test_record(a: Sequence[Cell], b: Sequence[Cell], name: str, n_boot: int) -> dict[str, Any]:
    result = paired_test(a, b, name, n_boot=n_boot)
    return {
        "a": a[0].method,
        "b": b[0].method,
        "metric": name,
        "diff": round(result.difference, 4),
        "ci": [round(result.ci95[0], 4), round(result.ci95[1], 4)],
        "p": round(result.p_bootstrap, 4),
        "p_ttest": None if result.p_ttest is None else round(result.p_ttest, 4),
        "n_pairs": result.n_pairs,
    }


def comparison_data(
    cells: Sequence[Cell],
    *,
    run_dir: Path | None = None,
    command: str = "",
    n_boot: int = 1000,
) -> dict[str, Any]:
    groups = group_by_method(cells)
    rows = summarise(cells, n_boot=n_boot, ci_metrics=MEASURES)
    best = {kind: best_baseline(rows, ensembles=kind) for kind in (False, True)}
    table = []
    for row in rows:
        group = groups[row.method]
        table.append({
            "method": row.method,
            "seeds": sorted(c.seed for c in group if c.seed is not None),
            **({"ensemble_of": group[0].run["members"]} if is_ensemble(row.method) else {}),
            **{name: measure(row, name) for name in MEASURES},
            **compute_seconds(group, stage_seconds(run_dir, row.method)),
            "device": provenance(group)[0],
        })  # fmt: skip
    pairs = [
        (method, other, MEASURES)
        for method in groups
        if is_method_row(method)
        for other in opponents(method, best, groups)
    ]
    if all(name in groups for name in GAN_EFFECT):
        pairs.append((*GAN_EFFECT, GAN_EFFECT_METRICS))
    tests = [
        test_record(groups[a], groups[b], name, n_boot) for a, b, names in pairs for name in names
    ]
    return {
        "rows": table,
        "tests": tests,
        "best_baseline": best[False],
        "best_baseline_ensemble": best[True],
        "device": "; ".join(
            sorted({part for row in table for part in row["device"].split("; ") if part})
        ),
        "cpu_seconds_is": "mean wall seconds of one seed's cell run on a CPU (a reused cell: its "
        "model's training) plus the run's GAN and search stages the method builds on",
        "gpu_seconds_is": "mean wall seconds of one seed's cell run on a GPU (shared with the "
        "cells trained beside it); null when no cell ran on one",
        "command": command,
    }


def write_comparison_json(
    compare_dir: Path, run_dir: Path | None = None, command: str = ""
) -> Path | None:
    """``compare_dir/comparison.json`` from its cells; None when it holds no cell."""
    if not Path(compare_dir).is_dir():
        return None
    cells = load_cells(compare_dir)
    if not cells:
        return None
    cells += seed_ensembles(compare_dir, cells)
    path = Path(compare_dir) / COMPARISON_FILE
    write_json_atomic(comparison_data(cells, run_dir=run_dir, command=command), path)
    return path
