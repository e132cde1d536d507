"""Does the search space matter, and does a cheap rung rank it as full training does?

``draw`` samples ``--settings`` points uniformly from the wide space in ``SPACE`` (the recipe
and the GAN side, ``configs/search-space/space.yaml``) and writes, for each, a full-training
config ``setting-NN.yaml`` (the default recipe plus the setting) and its cheap rung
``setting-NN-cheap.yaml`` (the same setting for a quarter of its epochs, the one-cycle schedule
compressed to fit). ``benchmarks/train_cells.py`` trains both; ``collect`` reads its cells and
writes the spread of full-training PublicTest macro-F1 over the settings (``spread.json``) and
the rung's agreement with it, Spearman's rho with a bootstrap CI over settings
(``fidelity.json``, ``"settings"`` and ``"spearman": {"rho", "ci"}``). PublicTest only.

    python benchmarks/search_space_spread.py draw --settings 16 --seed 0
    python benchmarks/train_cells.py --configs configs/search-space/setting-*.yaml \
        --out results/search-space/cells.json --keep results/search-space/cells
    python benchmarks/search_space_spread.py collect --cells results/search-space/cells.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import stats

from ganpso.config import read_yaml
from ganpso.pipeline.objective import with_settings
from ganpso.search.space import SearchSpace

FOLDER = Path("configs/search-space")
SPACE = FOLDER / "space.yaml"
CHEAP_SHARE = 0.25  # the cheap rung trains this share of the setting's epochs
BOOTSTRAP = 10_000
MIN_PAIRS = 5  # fewer settings at both rungs give no meaningful rank correlation


def cheap_epochs(epochs: int) -> int:
    return max(2, math.ceil(CHEAP_SHARE * epochs))


def draw(settings: int, seed: int) -> None:
    """Write ``setting-NN.yaml`` and ``setting-NN-cheap.yaml`` for uniform draws of the space."""
    raw = read_yaml(SPACE)
    space = SearchSpace.from_dict(raw["space"])
    points = np.random.default_rng(seed).random((settings, space.dim))
    for number, point in enumerate(points):
        setting = {  # four significant digits: the configs stay readable
            key: float(f"{value:.4g}") if isinstance(value, float) else value
            for key, value in space.decode(point).items()
        }
        full = with_settings({"base": "../default.yaml", **raw["fixed"]}, setting)
        header = f"# search-space draw {number} of {settings} (seed {seed}): {SPACE.name}\n"
        path = FOLDER / f"setting-{number:02d}.yaml"
        path.write_text(header + yaml.safe_dump(full, sort_keys=False))
        cheap = {"base": path.name, "epochs": cheap_epochs(int(read_yaml(path)["epochs"]))}
        cheap_header = f"# the cheap rung of {path.name}: {CHEAP_SHARE:.0%} of its epochs\n"
        (FOLDER / f"setting-{number:02d}-cheap.yaml").write_text(
            cheap_header + yaml.safe_dump(cheap, sort_keys=False)
        )
    print(f"wrote {settings} settings and their cheap rungs to {FOLDER}")


def describe_spread(values: np.ndarray) -> dict[str, Any] | None:
    if len(values) == 0:
        return None
    return {
        "n": len(values),
        "min": float(values.min()),
        "max": float(values.max()),
        "spread": round(float(values.max() - values.min()), 4),
    }


def spearman_ci(full: np.ndarray, cheap: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Spearman's rho and a 95 % percentile bootstrap interval over settings."""
    rho = float(stats.spearmanr(full, cheap).statistic)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP):
        index = rng.integers(0, len(full), len(full))
        if len(np.unique(full[index])) > 1 and len(np.unique(cheap[index])) > 1:
            draws.append(stats.spearmanr(full[index], cheap[index]).statistic)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"rho": round(rho, 3), "ci": [round(float(low), 3), round(float(high), 3)]}


def setting_values(name: str) -> dict[str, Any]:
    """The drawn values of a setting, read back from its config (dotted keys)."""
    raw = read_yaml(FOLDER / f"{name}.yaml")
    values = {}
    for key in SearchSpace.from_dict(read_yaml(SPACE)["space"]).names:
        node: Any = raw
        for part in key.split("."):
            node = node[part]
        values[key] = node
    return values


def setting_row(name: str, rows: dict[str, dict]) -> dict[str, Any]:
    """One setting's values and its two rungs' scores (None for a rung not finished yet)."""
    full, cheap = rows.get(name), rows.get(f"{name}-cheap")
    return {
        "setting": name,
        "values": setting_values(name),
        "full_macro_f1": full["public_macro_f1"] if full else None,
        "full_accuracy": full["public_accuracy"] if full else None,
        "full_train_seconds": full["train_seconds"] if full else None,
        "cheap_macro_f1": cheap["public_macro_f1"] if cheap else None,
        "cheap_train_seconds": cheap["train_seconds"] if cheap else None,
    }


def collect(cells_path: Path, out: Path) -> None:
    cells = json.loads(cells_path.read_text())
    rows = {row["config"]: row for row in cells["cells"]}
    names = sorted({name.removesuffix("-cheap") for name in rows})
    settings = [setting_row(name, rows) for name in names]
    trained = [s for s in settings if s["full_macro_f1"] is not None]
    full = np.array([s["full_macro_f1"] for s in trained])
    cheap = np.array([s["cheap_macro_f1"] for s in settings if s["cheap_macro_f1"] is not None])
    paired = [s for s in trained if s["cheap_macro_f1"] is not None]
    common = {
        "device": sorted({row["device"] for row in cells["cells"]}),
        "cells": str(cells_path),
        "command": "python " + " ".join(sys.argv),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    spread = {
        "experiment": "search-space spread: settings drawn uniformly, each trained in full",
        "space": read_yaml(SPACE),
        "settings": settings,
        "settings_trained_in_full": len(trained),
        "full_macro_f1": describe_spread(full),
        "cheap_macro_f1": describe_spread(cheap),
        **common,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "spread.json").write_text(json.dumps(spread, indent=2) + "\n")
    fidelity = {
        "experiment": f"cheap rung ({CHEAP_SHARE:.0%} of the epochs) against full training",
        "settings": paired,
        "spearman": spearman_ci(
            np.array([s["full_macro_f1"] for s in paired]),
            np.array([s["cheap_macro_f1"] for s in paired]),
        )
        if len(paired) >= MIN_PAIRS
        else f"not computed: {len(paired)} settings trained at both rungs, {MIN_PAIRS} needed",
        "cost_share": round(
            sum(s["cheap_train_seconds"] for s in paired)
            / sum(s["full_train_seconds"] for s in paired),
            3,
        )
        if paired
        else None,
        **common,
    }
    (out / "fidelity.json").write_text(json.dumps(fidelity, indent=2) + "\n")
    print(json.dumps({key: spread[key] for key in ("full_macro_f1", "cheap_macro_f1")}))
    print(json.dumps({"spearman": fidelity["spearman"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    drawing = commands.add_parser("draw")
    drawing.add_argument("--settings", type=int, default=16)
    drawing.add_argument("--seed", type=int, default=0)
    collecting = commands.add_parser("collect")
    collecting.add_argument("--cells", type=Path, default=Path("results/search-space/cells.json"))
    collecting.add_argument("--out", type=Path, default=Path("results/search-space"))
    args = parser.parse_args()
    if args.command == "draw":
        draw(args.settings, args.seed)
    else:
        collect(args.cells, args.out)


if __name__ == "__main__":
    main()
