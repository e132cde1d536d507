"""PSO vs random search vs Optuna's TPE on the real pipeline objective, at an equal budget.

Every optimizer searches the run's search space with the run's fidelity and pool of fakes
(copied, so every optimizer picks from the same faces), for ``--iterations x --batch-size``
evaluations per seed. Writes per-optimizer search folders and ``comparison.json`` (best fitness
reached after each evaluation, per optimizer and seed, and the median over seeds) into --out.
Resumable: each search folder resumes on its own.

    python benchmarks/search_comparison.py --run runs/default --iterations 4 --batch-size 6 \
        --seeds 0 --out results/search-comparison
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
from ganpso.pipeline.folders import read_run_config
from ganpso.pipeline.run import gan_recipe
from ganpso.pipeline.search import search_pipeline

OPTIMIZERS = ("pso", "random", "tpe")


def best_so_far(evaluations: Path) -> list[float]:
    values = [json.loads(line).get("value") for line in evaluations.read_text().splitlines()]
    finite = [v if v is not None else -np.inf for v in values]
    return np.maximum.accumulate(finite).tolist() if finite else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    run = read_run_config(args.run)
    base = gan_recipe(run, args.run)
    curves: dict[str, dict[int, list[float]]] = {}
    started = time.perf_counter()
    for name in args.optimizers:
        for seed in args.seeds:
            out = args.out / f"{name}-seed{seed}"
            out.mkdir(parents=True, exist_ok=True)
            if not (out / "pool.npz").exists():
                shutil.copy2(args.run / "search" / "pool.npz", out / "pool.npz")
            config = replace(
                run.search,
                optimizer=name,
                iterations=args.iterations,
                batch_size=args.batch_size,
                seed=seed,
            )
            print(f"== {name}, seed {seed}")
            search_pipeline(config, base=base, out=out)
            (out / "pool.npz").unlink()  # a copy of the run's pool; not worth keeping
            curves.setdefault(name, {})[seed] = best_so_far(out / "evaluations.jsonl")
    summary = {
        "command": "python benchmarks/search_comparison.py "
        + " ".join(
            [
                f"--run {args.run}",
                f"--iterations {args.iterations}",
                f"--batch-size {args.batch_size}",
                "--seeds " + " ".join(map(str, args.seeds)),
                f"--out {args.out}",
            ]
        ),
        "device": describe_device(resolve_device(run.device)),
        "seconds": round(time.perf_counter() - started, 1),
        "budget_per_seed": args.iterations * args.batch_size,
        "fidelity": run.search.fidelity.__dict__,
        "best_so_far": {k: {str(s): v for s, v in c.items()} for k, c in curves.items()},
        "median_final_best": {
            k: float(np.median([v[-1] for v in c.values()])) for k, c in curves.items()
        },
    }
    (args.out / "comparison.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["median_final_best"], indent=2))


if __name__ == "__main__":
    main()
