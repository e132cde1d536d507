"""PSO vs random search vs Optuna's TPE vs nevergrad's CMA-ES on the pipeline objective, at an
equal budget.

Every optimizer searches the run's search space with the run's fidelity (or those of
``--search-config``, e.g. ``configs/search-wide.yaml``) and the run's pool of fakes (copied, so
every optimizer picks from the same faces), for ``--iterations x --batch-size`` evaluations per
seed. Writes per-optimizer search folders, ``comparison.json`` (per optimizer and seed the best
fitness reached after each evaluation and the evaluation seconds spent by then; per optimizer
the median, quartiles and range of the final best over seeds) and ``best-so-far.png`` (best
against evaluation seconds: the median over seeds, the band from the lowest to the highest)
into --out. Resumable: each search folder resumes on its own.

    python benchmarks/search_comparison.py --run runs/default --iterations 4 --batch-size 6 \
        --seeds 0 1 2 3 4 --out results/search-comparison
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganpso.device import describe_device, resolve_device
from ganpso.pipeline.config import SearchConfig
from ganpso.pipeline.folders import read_run_config
from ganpso.pipeline.run import gan_recipe
from ganpso.pipeline.search import search_pipeline

OPTIMIZERS = ("pso", "random", "tpe", "cma")


def best_so_far(evaluations: Path) -> tuple[list[float], list[float]]:
    """The best value after each evaluation, and the evaluation seconds spent by then."""
    rows = [json.loads(line) for line in evaluations.read_text().splitlines()]
    values = [row.get("value") if row.get("value") is not None else -np.inf for row in rows]
    seconds = np.cumsum([float(row.get("seconds") or 0.0) for row in rows])
    best = np.maximum.accumulate(values).tolist() if values else []
    return best, seconds.round(1).tolist()


def spread(finals: list[float]) -> dict[str, float]:
    low, q1, median, q3, high = np.percentile(finals, [0, 25, 50, 75, 100])
    return {"median": median, "q1": q1, "q3": q3, "min": low, "max": high, "n": len(finals)}


def plot_best_so_far(curves: dict[str, dict[int, tuple[list, list]]], path: Path) -> None:
    """Median best against median evaluation seconds per optimizer, min-max band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for name, by_seed in curves.items():
        best = np.array([b for b, _ in by_seed.values()])  # (seeds, evaluations)
        seconds = np.median(np.array([t for _, t in by_seed.values()]), axis=0)
        axes.plot(seconds, np.median(best, axis=0), label=f"{name} (median of {len(best)})")
        axes.fill_between(seconds, best.min(axis=0), best.max(axis=0), alpha=0.2)
    axes.set_xlabel("evaluation seconds")
    axes.set_ylabel("best fitness so far (PublicTest)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    parser.add_argument("--search-config", type=Path, help="space and fidelity (default: run's)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    run = read_run_config(args.run)
    base = gan_recipe(run, args.run)
    search = SearchConfig.from_yaml(args.search_config) if args.search_config else run.search
    curves: dict[str, dict[int, tuple[list[float], list[float]]]] = {}
    started = time.perf_counter()
    for name in args.optimizers:
        for seed in args.seeds:
            out = args.out / f"{name}-seed{seed}"
            out.mkdir(parents=True, exist_ok=True)
            if not (out / "pool.npz").exists():
                shutil.copy2(args.run / "search" / "pool.npz", out / "pool.npz")
            config = replace(
                search,
                optimizer=name,
                iterations=args.iterations,
                batch_size=args.batch_size,
                seed=seed,
                rescore_top_k=0,  # optimizers compared on the rung they search, not re-scored
            )
            print(f"== {name}, seed {seed}")
            search_pipeline(config, base=base, out=out)
            (out / "pool.npz").unlink()  # a copy of the run's pool; not worth keeping
            curves.setdefault(name, {})[seed] = best_so_far(out / "evaluations.jsonl")
    summary = {
        "command": "python benchmarks/search_comparison.py "
        + " ".join(
            part
            for part in [
                f"--run {args.run}",
                f"--iterations {args.iterations}",
                f"--batch-size {args.batch_size}",
                "--seeds " + " ".join(map(str, args.seeds)),
                "--optimizers " + " ".join(args.optimizers),
                f"--search-config {args.search_config}" if args.search_config else "",
                f"--out {args.out}",
            ]
            if part
        ),
        "device": describe_device(resolve_device(run.device)),
        "seconds": round(time.perf_counter() - started, 1),
        "budget_per_seed": args.iterations * args.batch_size,
        "fidelity": search.fidelity.__dict__,
        "best_so_far": {k: {str(s): v[0] for s, v in c.items()} for k, c in curves.items()},
        "evaluation_seconds": {k: {str(s): v[1] for s, v in c.items()} for k, c in curves.items()},
        "final_best": {k: spread([v[0][-1] for v in c.values()]) for k, c in curves.items()},
        "median_final_best": {
            k: float(np.median([v[0][-1] for v in c.values()])) for k, c in curves.items()
        },
    }
    (args.out / "comparison.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_best_so_far(curves, args.out / "best-so-far.png")
    print(json.dumps(summary["final_best"], indent=2))


if __name__ == "__main__":
    main()
