"""Does the search's reduced-fidelity fitness rank settings as full training does?

For each trained model folder (a full ``ganpso train``-style run with ``config.yaml`` and
``history.jsonl``), read the values of the search-space keys (and the re-balancing keys, so that
the class-weighted and oversampled baselines count too) from its config, score them with the
run's reduced-fidelity objective (same pool and fidelity as the search, or the fidelity given
with ``--fidelity KEY=VALUE``), and put that beside the full run's PublicTest macro-F1 at the
epoch it kept (one view, as the search scores; a compare method folder such as
``results/compare/cnn`` stands for all its seeds, its full value their mean). PublicTest only.

    python benchmarks/fidelity_agreement.py --run runs/default \
        --models runs/default/classifier runs/default/final results/compare/gan_fixed/seed0 \
        --fidelity epochs=4 --out results/run-default/fidelity.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ganpso.classifier.config import TrainConfig
from ganpso.config import apply_overrides, build_config
from ganpso.device import describe_device, resolve_device
from ganpso.pipeline.config import FidelityConfig
from ganpso.pipeline.folders import read_history, read_run_config
from ganpso.pipeline.objective import PipelineObjective
from ganpso.pipeline.rescore import kept_macro_f1
from ganpso.pipeline.run import gan_recipe


def dotted(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def model_settings(config: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """The search-space values a trained model used (a class ratio falls back to ``ratio``)."""
    settings = {}
    for key in keys:
        value = dotted(config, key)
        if value is None and key.startswith("synthetic.class_ratios."):
            value = dotted(config, "synthetic.ratio")
        settings[key] = value
    return settings


REBALANCING_KEYS = ["class_weighting", "sampling"]


def trained_folders(model: Path) -> list[Path]:
    """A model folder, or every ``seed*/`` of a compare method folder (one setting, many seeds)."""
    if (model / "config.yaml").exists():
        return [model]
    seeds = sorted(p for p in model.glob("seed*") if (p / "history.jsonl").exists())
    if not seeds:
        raise SystemExit(f"{model}: neither a trained model folder nor a method's seed folders")
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--models", type=Path, nargs="+", required=True)
    parser.add_argument("--fidelity", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    run = read_run_config(args.run)
    base = gan_recipe(run, args.run)
    fidelity_raw = apply_overrides(run.search.fidelity.__dict__, args.fidelity)
    fidelity = build_config(FidelityConfig, fidelity_raw, "--fidelity")
    objective = PipelineObjective(base, args.run / "search" / "pool.npz", fidelity)
    keys = list(run.search.space) + REBALANCING_KEYS
    rows = []
    started = time.perf_counter()
    for folder in args.models:
        seeds = trained_folders(folder)
        config = TrainConfig.from_yaml(seeds[0] / "config.yaml").to_dict()  # defaults filled in
        settings = model_settings(config, keys)
        started_model = time.perf_counter()
        reduced = objective(settings)
        seconds = round(time.perf_counter() - started_model, 1)
        fulls = [kept_macro_f1(read_history(seed), config["selection_metric"]) for seed in seeds]
        full = float(np.mean(fulls))
        rows.append(
            {
                "model": str(folder),
                "settings": settings,
                "reduced": reduced,
                "full": full,
                "full_per_seed": fulls,
                "reduced_seconds": seconds,
            }
        )
        print(f"{folder}: reduced {reduced:.4f} ({seconds:.0f} s)  full {full:.4f} {fulls}")
    reduced, full = [r["reduced"] for r in rows], [r["full"] for r in rows]
    rho = stats.spearmanr(reduced, full).statistic if len(rows) > 2 else None
    report = {
        "command": "python benchmarks/fidelity_agreement.py --run "
        + f"{args.run} --models {' '.join(map(str, args.models))} "
        + "".join(f"--fidelity {item} " for item in args.fidelity)
        + f"--out {args.out}",
        "device": describe_device(resolve_device(run.device)),
        "seconds": round(time.perf_counter() - started, 1),
        "fidelity": fidelity.__dict__,
        "rows": rows,
        "spearman_rho": rho,
        "same_best": max(rows, key=lambda r: r["reduced"])["model"]
        == max(rows, key=lambda r: r["full"])["model"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Spearman rho {rho}; wrote {args.out}")


if __name__ == "__main__":
    main()
