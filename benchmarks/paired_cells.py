"""Two recipes' trained cells paired by seed on PrivateTest: is A better than B, beyond noise?

Each arm is ``NAME=PATTERN``, the pattern a cell folder with ``{seed}`` in it. A cell folder holds
its ``run.json`` and its one PrivateTest evaluation, ``metrics-PrivateTest.json`` and, where it
was kept, ``predictions-PrivateTest.npz`` (both written by ``ganpso evaluate RUN --split
PrivateTest``, or by ``train_cells.py --final-split PrivateTest``). For each measure the JSON has
``seeds``: the mean per-seed difference A - B, its 95 % t interval and the paired t-test (>= 3
seeds), every seed's two values read from its metrics report; and ``images``: the paired
bootstrap over the test images of the seed-averaged difference (95 % interval, p), over the
seeds whose two cells both kept their predictions (``null`` when none did). A seed's two cells
must come from one machine kind and precision (a machine moves a cell as much as a seed does):
an arm may give several patterns, comma-separated, and each seed pairs the first of A's cells with
the first of B's that ran on the same ``device`` and ``precision`` (a seed with no such pair is
refused); the folders each seed used and their machine are recorded. The table it prints is the one
``python -m ganpso.report.paired_table JSON README`` writes between a README's markers.

    python benchmarks/paired_cells.py \
        --a gan_fixed=results/recipe/cells-cpu/gan-fixed-s{seed} \
        --b cnn=results/recipe/machine-check/cells/minimal-regularisation-s{seed} \
        --seeds 0 1 --out results/gan/downstream.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ganpso.pipeline.folders import Cell, load_cell
from ganpso.report.comparison_data import GAN_EFFECT_METRICS
from ganpso.report.paired_table import paired_table
from ganpso.report.summary import metric_value, paired_test

CELL_FILES = ("metrics-PrivateTest.json", "run.json")


def parse_arm(text: str) -> tuple[str, list[str]]:
    name, sep, patterns = text.partition("=")
    if not sep or not all("{seed}" in pattern for pattern in patterns.split(",")):
        raise SystemExit(f"--a/--b {text!r}: expected NAME=PATTERN[,PATTERN] with {{seed}} in each")
    return name, patterns.split(",")


def candidates(name: str, patterns: list[str], seed: int) -> list[tuple[Path, Cell]]:
    """The seed's evaluated cells of one arm, in the order of its patterns."""
    folders = [Path(pattern.format(seed=seed)) for pattern in patterns]
    found = [f for f in folders if all((f / file).exists() for file in CELL_FILES)]
    if not found:
        raise SystemExit(
            f"{folders[0]}: no {' and '.join(CELL_FILES)} (run `ganpso evaluate RUN --split "
            "PrivateTest` on the trained cell and copy its run.json and PrivateTest files here)"
        )
    cells = []
    for folder in found:
        cells.append((folder, load_cell(folder, name, seed)))
        cells[-1][1].run = json.loads((folder / "run.json").read_text())
    return cells


def machine_of(cell: Cell) -> dict[str, str]:
    return {"device": cell.run.get("device", "?"), "precision": cell.run.get("precision", "?")}


def pair_seed(arm_a: tuple[str, list[str]], arm_b: tuple[str, list[str]], seed: int) -> dict:
    """The seed's first pair of cells trained on one machine kind and precision."""
    cells_a, cells_b = candidates(*arm_a, seed), candidates(*arm_b, seed)
    for folder_a, a in cells_a:
        for folder_b, b in cells_b:
            if machine_of(a) == machine_of(b):
                return {"a": a, "b": b, "folders": [str(folder_a), str(folder_b)]}
    raise SystemExit(
        f"seed {seed}: {arm_a[0]} ran on {[machine_of(c) for _, c in cells_a]}, {arm_b[0]} on "
        f"{[machine_of(c) for _, c in cells_b]}; pair cells trained on one machine kind and "
        "precision"
    )


def seed_interval(differences: np.ndarray) -> list[float] | None:
    """95 % t interval of the mean per-seed difference (None below two seeds)."""
    if len(differences) < 2:
        return None
    half = stats.t.ppf(0.975, len(differences) - 1) * differences.std(ddof=1)
    half /= np.sqrt(len(differences))
    return [round(float(differences.mean() - half), 4), round(float(differences.mean() + half), 4)]


def seeds_record(arm_a: list[Cell], arm_b: list[Cell], name: str) -> dict:
    values_a = np.array([metric_value(cell.metrics, name) for cell in arm_a])
    values_b = np.array([metric_value(cell.metrics, name) for cell in arm_b])
    differences = values_a - values_b
    enough = len(differences) >= 3  # the package's paired t convention
    return {
        "diff": round(float(differences.mean()), 4),
        "ci": seed_interval(differences),
        "p_ttest": round(float(stats.ttest_rel(values_a, values_b).pvalue), 4) if enough else None,
        "per_seed": [
            {
                "seed": a.seed,
                "a": round(float(va), 4),
                "b": round(float(vb), 4),
                "diff": round(float(va - vb), 4),
            }
            for a, va, vb in zip(arm_a, values_a, values_b, strict=True)
        ],
    }


def images_record(arm_a: list[Cell], arm_b: list[Cell], name: str, n_boot: int) -> dict | None:
    pairs = [
        (a, b) for a, b in zip(arm_a, arm_b, strict=True) if a.has_predictions and b.has_predictions
    ]
    if not pairs:
        return None
    result = paired_test([a for a, _ in pairs], [b for _, b in pairs], name, n_boot=n_boot)
    return {
        "seeds": [a.seed for a, _ in pairs],
        "diff": round(result.difference, 4),
        "ci": [round(result.ci95[0], 4), round(result.ci95[1], 4)],
        "p": round(result.p_bootstrap, 4),
    }


def measure_record(arm_a: list[Cell], arm_b: list[Cell], name: str, n_boot: int) -> dict:
    return {
        "metric": name,
        "seeds": seeds_record(arm_a, arm_b, name),
        "images": images_record(arm_a, arm_b, name, n_boot),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="NAME=PATTERN of the arm tested")
    parser.add_argument("--b", required=True, help="NAME=PATTERN of the control arm")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    (name_a, patterns_a), (name_b, patterns_b) = parse_arm(args.a), parse_arm(args.b)
    pairs = [pair_seed((name_a, patterns_a), (name_b, patterns_b), s) for s in args.seeds]
    arm_a, arm_b = [pair["a"] for pair in pairs], [pair["b"] for pair in pairs]
    tests = [measure_record(arm_a, arm_b, name, args.n_boot) for name in GAN_EFFECT_METRICS]
    result: dict[str, Any] = {
        "a": {"method": name_a, "cells": patterns_a},
        "b": {"method": name_b, "cells": patterns_b},
        "seeds": args.seeds,
        "pairs": {
            str(seed): {"folders": pair["folders"], **machine_of(pair["a"])}
            for seed, pair in zip(args.seeds, pairs, strict=True)
        },
        "split": "PrivateTest",
        "tests": tests,
        "command": "python " + " ".join(sys.argv),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(paired_table(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
