"""Our PSO against random search and nevergrad's ConfPSO at an equal number of evaluations.

Sphere, Rosenbrock and Rastrigin in 10 dimensions on their standard domains, each optimiser
working in the unit cube [0, 1]^10 and the function mapping it onto the domain. Reports the
median and quartiles, over seeds, of the best value each method evaluated, a rank test of our PSO
against each other method, and the ask / tell overhead per particle. Every PSO run uses
``PSOConfig``'s defaults (one setting for all functions); only swarm size, iterations, direction
and topology are set here.

    python benchmarks/bench_pso.py --out results/pso-benchmark
    python benchmarks/bench_pso.py --dim 5 --swarm-size 10 --iterations 20 \
        --out results/pso-benchmark/small-budget

nevergrad is optional (``pip install -e .[bench]``); without it its rows are left out.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganpso.device import cpu_model
from ganpso.search import ParticleSwarm, PSOConfig

Function = Callable[[np.ndarray], float]


def sphere(z: np.ndarray) -> float:
    return float(np.sum(z**2))


def rosenbrock(z: np.ndarray) -> float:
    return float(np.sum(100.0 * (z[1:] - z[:-1] ** 2) ** 2 + (1.0 - z[:-1]) ** 2))


def rastrigin(z: np.ndarray) -> float:
    return float(10.0 * z.size + np.sum(z**2 - 10.0 * np.cos(2.0 * np.pi * z)))


# name -> (function, domain low, domain high); the minimum is 0 for all three
FUNCTIONS: dict[str, tuple[Function, float, float]] = {
    "sphere": (sphere, -5.12, 5.12),
    "rosenbrock": (rosenbrock, -5.0, 10.0),
    "rastrigin": (rastrigin, -5.12, 5.12),
}


def on_unit_cube(name: str) -> Function:
    function, low, high = FUNCTIONS[name]
    return lambda u: function(low + np.asarray(u) * (high - low))


def bench_config(budget: tuple[int, int], topology: str = "global") -> PSOConfig:
    """The defaults; only the budget, the direction and the topology are set."""
    swarm_size, iterations = budget
    return PSOConfig(
        swarm_size=swarm_size, iterations=iterations, direction="minimize", topology=topology
    )


def run_pso(f: Function, dim: int, budget: tuple[int, int], seed: int, topology: str) -> float:
    swarm = ParticleSwarm(dim, bench_config(budget, topology), rng=np.random.default_rng(seed))
    while not swarm.done:
        for trial in swarm.ask():
            swarm.tell(trial, f(trial.position))
    return float(swarm.best_value)


def run_random(f: Function, dim: int, budget: tuple[int, int], seed: int) -> float:
    points = np.random.default_rng(seed).random((budget[0] * budget[1], dim))
    return min(f(u) for u in points)


def run_nevergrad(
    f: Function, dim: int, budget: tuple[int, int], seed: int, popsize: int | None
) -> float:
    import nevergrad as ng

    parametrization = ng.p.Array(shape=(dim,), lower=0.0, upper=1.0)
    parametrization.random_state = np.random.RandomState(seed)
    evaluations = budget[0] * budget[1]
    optimizer = ng.optimizers.ConfPSO(popsize=popsize)(parametrization, budget=evaluations)
    best = float("inf")
    for _ in range(evaluations):
        candidate = optimizer.ask()
        value = f(candidate.value)
        optimizer.tell(candidate, value)
        best = min(best, value)
    return best


def methods(budget: tuple[int, int]) -> dict[str, Callable[[Function, int, int], float]]:
    found: dict[str, Callable[[Function, int, int], float]] = {
        "ganpso PSO (global)": lambda f, d, s: run_pso(f, d, budget, s, "global"),
        "ganpso PSO (ring, k=3)": lambda f, d, s: run_pso(f, d, budget, s, "ring"),
        "random search": lambda f, d, s: run_random(f, d, budget, s),
    }
    try:
        import nevergrad  # noqa: F401
    except ImportError:
        return found
    found[f"nevergrad ConfPSO (popsize {budget[0]})"] = lambda f, d, s: run_nevergrad(
        f, d, budget, s, budget[0]
    )
    found["nevergrad ConfPSO (default popsize 40)"] = lambda f, d, s: run_nevergrad(
        f, d, budget, s, None
    )
    return found


def quartiles(values: list[float]) -> dict[str, float]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"q1": float(q1), "median": float(median), "q3": float(q3)}


def overhead_ms(dim: int, budget: tuple[int, int], repeats: int = 5) -> float:
    """Milliseconds of ask + tell per particle, objective excluded (median of repeats)."""
    times = []
    for seed in range(repeats):
        swarm = ParticleSwarm(dim, bench_config(budget), rng=np.random.default_rng(seed))
        start = time.perf_counter()
        while not swarm.done:
            for trial in swarm.ask():
                swarm.tell(trial, 0.0)
        times.append((time.perf_counter() - start) / (budget[0] * budget[1]) * 1e3)
    return statistics.median(times)


def method_table(
    per_method: dict[str, dict[str, dict[str, float]]],
    functions: list[str],
    first: str,
    column: str,
    cell: Callable[[dict[str, float]], str],
) -> str:
    """One row per method, one column per function (titled ``column.format(f)``)."""
    header = f"| {first} | " + " | ".join(column.format(f) for f in functions) + " |"
    lines = [header, "|" + " --- |" * (len(functions) + 1)]
    for method, per_function in per_method.items():
        cells = [cell(per_function[f]) for f in functions]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(results: dict[str, dict[str, dict[str, float]]], functions: list[str]) -> str:
    return method_table(
        results,
        functions,
        "method",
        "{} median [q1, q3]",
        lambda s: f"{s['median']:.3g} [{s['q1']:.3g}, {s['q3']:.3g}]",
    )


REFERENCE = "ganpso PSO (global)"


def rank_tests(runs: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Our PSO against each other method, per function, over the same seeds.

    ``p_worse``: one-sided Mann-Whitney U p-value for "ours is worse" (a small value says the
    other method is reliably better); ``p_better`` the other side; ``wins``: the share of seeds
    on which ours is lower (paired by seed).
    """
    from scipy.stats import mannwhitneyu

    ours = runs[REFERENCE]
    tests: dict[str, dict[str, dict[str, float]]] = {}
    for method, per_function in runs.items():
        if method == REFERENCE:
            continue
        tests[method] = {}
        for name, theirs in per_function.items():
            tests[method][name] = {
                "p_worse": float(mannwhitneyu(ours[name], theirs, alternative="greater").pvalue),
                "p_better": float(mannwhitneyu(ours[name], theirs, alternative="less").pvalue),
                "wins": float(np.mean(np.array(ours[name]) < np.array(theirs))),
            }
    return tests


def tests_table(tests: dict[str, dict[str, dict[str, float]]], functions: list[str]) -> str:
    return method_table(
        tests,
        functions,
        "ours against",
        "{}: p worse / p better",
        lambda t: f"{t['p_worse']:.2g} / {t['p_better']:.2g}",
    )


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import nevergrad

        found["nevergrad"] = nevergrad.__version__
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=25)
    parser.add_argument("--first-seed", type=int, default=1000)  # apart from the tuning seeds
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--swarm-size", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("results/pso-benchmark"))
    args = parser.parse_args()
    budget = (args.swarm_size, args.iterations)
    seeds = range(args.first_seed, args.first_seed + args.seeds)

    results: dict[str, dict[str, dict[str, float]]] = {}
    runs: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = {}
    for method, run in methods(budget).items():
        start = time.perf_counter()
        runs[method] = {
            name: [run(on_unit_cube(name), args.dim, seed) for seed in seeds] for name in FUNCTIONS
        }
        results[method] = {name: quartiles(v) for name, v in runs[method].items()}
        seconds[method] = round(time.perf_counter() - start, 2)
        print(f"{method}: {seconds[method]:.1f} s", flush=True)

    table = markdown_table(results, list(FUNCTIONS))
    tests = rank_tests(runs)
    overhead = overhead_ms(args.dim, budget)
    report = {
        "benchmark": "PSO best value at equal evaluations (lower is better, optimum 0)",
        "dim": args.dim,
        "evaluations": budget[0] * budget[1],
        "swarm_size": budget[0],
        "iterations": budget[1],
        "seeds": [seeds.start, seeds.stop - 1],
        "domains": {name: [low, high] for name, (_, low, high) in FUNCTIONS.items()},
        "pso_config": bench_config(budget).to_dict(),  # the ring rows: topology "ring"
        "results": results,
        "rank_tests": tests,
        "runs": runs,
        "seconds_per_method": seconds,
        "ask_tell_overhead_ms_per_particle": round(overhead, 4),
        "overhead_target_ms": 1.0,
        "device": f"cpu: {cpu_model()}",
        "versions": versions(),
        "command": (
            f"python benchmarks/bench_pso.py --seeds {args.seeds} --first-seed {args.first_seed} "
            f"--dim {args.dim} "
            f"--swarm-size {args.swarm_size} --iterations {args.iterations} --out {args.out}"
        ),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    notes = (
        f"\n\nBest value over {budget[0] * budget[1]} evaluations ({budget[0]} x {budget[1]}), "
        f"{args.dim} dimensions, median [quartiles] over seeds {seeds.start}-{seeds.stop - 1}; "
        "lower is better, "
        f"optimum 0. ask/tell overhead: {overhead:.3f} ms per particle. "
        f"Command: `{report['command']}`; device: {report['device']}.\n\n"
    )
    test_notes = (
        "\n\nOne-sided Mann-Whitney U p-values over the same seeds: *p worse* < 0.05 says the "
        "other method is reliably better than ours, *p better* < 0.05 that ours is.\n"
    )
    text = table + notes + tests_table(tests, list(FUNCTIONS)) + test_notes
    (args.out / "table.md").write_text(text)
    print(text)
    print(f"wrote {args.out / 'benchmark.json'}")


if __name__ == "__main__":
    main()
