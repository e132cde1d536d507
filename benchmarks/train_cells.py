"""Train (config, seed) cells in full, several at once, resumably, and collect PublicTest scores.

A cell is one ``ganpso train --config CONFIG --set seed=S`` in ``RUNS/<config stem>-s<S>``. A
finished cell (its ``run.json``, or its row in ``OUT``) is kept, an interrupted one resumes, so
rerunning the same command after a crash, a deadline or at the next session (or on another
machine, with only the committed ``OUT``) goes on where it stopped. Cells run in
``--workers`` processes at once (a GPU or a many-core machine; on 2 cores one at a time is as
fast), each with ``--threads`` CPU threads; ``--deadline-s`` starts no cell after it and stops
the running ones there (they resume next time). PrivateTest is never read here, except with
``--final-split PrivateTest`` for arms already chosen (a paired test of two fixed recipes): each
cell is then evaluated on it once, right after it trains, and its metrics and per-image
predictions are kept with the cell, so the one evaluation outlives the checkpoint; the rows
stay PublicTest-only.

After every finished cell ``OUT`` (JSON) is rewritten with one row per finished cell, and each
cell's config, history and PublicTest metrics are copied to ``KEEP/<cell>/`` when ``--keep`` is
given; each new row names the machine kind that trained it (``machine_kind``), and ``machines``
holds the facts of every kind that wrote ``OUT``. ``--collect-only`` trains nothing.

    python benchmarks/train_cells.py --configs configs/recipe/*.yaml --seeds 0 1 2 \
        --out results/recipe/cells.json --keep results/recipe/cells
    python benchmarks/train_cells.py ... --workers 12 --threads 1 --set device=cuda \
        --data .gpu/fer2013.zip --deadline-s 480          # on a lent GPU
    python benchmarks/train_cells.py --configs configs/recipe/gan-fixed.yaml --seeds 1 \
        --out results/recipe/cells-cpu.json --keep results/recipe/cells-cpu \
        --final-split PrivateTest
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ganpso.classifier.evaluation import metrics_file, predictions_file
from machine import machine_facts, machine_kind

CELL_FILES = ("config.yaml", "history.jsonl", "metrics-PublicTest.json", "run.json")


def cell_name(config: Path, seed: int) -> str:
    return f"{config.stem}-s{seed}"


def train_command(config: Path, seed: int, folder: Path, args: argparse.Namespace) -> list[str]:
    """The ``ganpso train`` call of one cell: a fresh start, or a resume of its folder."""
    command = [sys.executable, "-m", "ganpso", "train", "--out", str(folder)]
    if (folder / "config.yaml").exists():
        return [*command, "--resume"]
    command += ["--config", str(config), "--set", f"seed={seed}"]
    for override in [*args.set, f"num_threads={args.threads}"]:
        command += ["--set", override]
    if args.data:
        command += ["--data", args.data]
    return command


def run_cell(command: list[str], log: Path, seconds_left: float) -> int:
    """One cell's process, its output in ``log``; killed (and resumable) at the deadline."""
    with log.open("a") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            return process.wait(timeout=max(1.0, seconds_left))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return -9


def final_files(split: str | None) -> tuple[str, ...]:
    return (metrics_file(split), predictions_file(split)) if split else ()


def evaluate_final(folder: Path, args: argparse.Namespace) -> int:
    """The cell's one evaluation on ``--final-split``, written into its folder."""
    command = [sys.executable, "-m", "ganpso", "evaluate", str(folder)]
    command += ["--split", args.final_split] + (["--data", args.data] if args.data else [])
    with (folder / "cell.log").open("a") as sink:
        return subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT).returncode


def cell_row(name: str, config: Path, seed: int, folder: Path) -> dict:
    metrics = json.loads((folder / "metrics-PublicTest.json").read_text())
    run = json.loads((folder / "run.json").read_text())
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    kept = max(history, key=lambda row: row["val/accuracy"])
    return {
        "cell": name,
        "config": config.stem,
        "seed": seed,
        "public_accuracy": round(metrics["accuracy"], 4),
        "public_macro_f1": round(metrics["macro"]["f1"], 4),
        "kept_epoch": int(kept["epoch"]),
        "epochs": len(history),
        "train_seconds": run["train_seconds"],
        "wall_seconds": run["wall_seconds"],
        "device": run["device"],
        "precision": run.get("precision"),  # absent from records written before it was kept
    }


def collect(cells: list[tuple[Path, int]], args: argparse.Namespace) -> list[dict]:
    """Rows of the finished cells; rows already in ``OUT`` stay as they were written."""
    rows = {row["cell"]: row for row in read_out(args.out).get("cells", [])}
    for config, seed in cells:
        name = cell_name(config, seed)
        folder = args.runs / name
        if not (folder / "run.json").exists():
            continue
        if name not in rows:
            # stamped when collected, right after training: a folder may outlive its machine
            rows[name] = cell_row(name, config, seed, folder) | {"machine_kind": machine_kind()}
        if args.keep:
            keep_files(folder, args.keep / name, CELL_FILES + final_files(args.final_split))
    return list(rows.values())


def keep_files(folder: Path, kept: Path, files: tuple[str, ...]) -> None:
    """Copy the files not kept yet: a final evaluation may come after its row was written."""
    kept.mkdir(parents=True, exist_ok=True)
    for file in files:
        if (folder / file).exists() and not (kept / file).exists():
            shutil.copy2(folder / file, kept / file)


def read_out(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def machines_seen(previous: dict) -> dict[str, dict]:
    """Every machine kind that wrote ``OUT``, this one included: cells accumulate across them."""
    machines = dict(previous.get("machines", {}))
    if "machine" in previous:  # files written before cells named their machine kind
        machines[previous["machine"]["kind"]] = previous["machine"]
    facts = machine_facts()
    return machines | {facts["kind"]: facts}


def write_rows(rows: list[dict], args: argparse.Namespace) -> None:
    result = {
        "experiment": "full trainings, PublicTest only",
        "cells": sorted(rows, key=lambda row: row["cell"]),
        "machines": machines_seen(read_out(args.out)),
        "command": "python " + " ".join(sys.argv),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)


def warm_cache(args: argparse.Namespace, config: Path) -> None:
    """Decode the dataset once, so that parallel cells read the cache instead of racing."""
    command = [sys.executable, "-m", "ganpso", "train", "--config", str(config), "--dry-run"]
    command += ["--set", "device=cpu"] + (["--data", args.data] if args.data else [])
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", type=Path, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/cells"))
    parser.add_argument("--out", type=Path, required=True, help="the cells' JSON")
    parser.add_argument("--keep", type=Path, help="copy each cell's small files here")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per cell")
    parser.add_argument("--set", action="append", default=[], help="override for every cell")
    parser.add_argument("--data", help="dataset for every cell (default: each config's)")
    parser.add_argument("--deadline-s", type=float, default=float("inf"))
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument(
        "--final-split",
        choices=["PrivateTest"],
        help="evaluate each cell once on this split after training (fixed arms only)",
    )
    args = parser.parse_args()

    missing = [str(config) for config in args.configs if not config.exists()]
    if missing:
        sys.exit(f"no such config: {', '.join(missing)}")
    # seeds outermost: every config's first seed finishes before any config's second
    cells = [(config, seed) for seed in args.seeds for config in args.configs]
    recorded = set()
    if args.out.exists():  # finished elsewhere (a lent GPU), kept only as rows
        recorded = {row["cell"] for row in json.loads(args.out.read_text())["cells"]}
    began = time.perf_counter()
    lock = threading.Lock()

    def one(cell: tuple[Path, int]) -> None:
        config, seed = cell
        folder = args.runs / cell_name(config, seed)
        left = args.deadline_s - (time.perf_counter() - began)
        trained = (folder / "run.json").exists()
        finals = final_files(args.final_split)
        evaluated = not finals or (folder / finals[0]).exists()
        finished_elsewhere = folder.name in recorded and not trained
        if (trained and evaluated) or finished_elsewhere or left <= 0:
            return
        code = 0
        if not trained:
            folder.mkdir(parents=True, exist_ok=True)
            code = run_cell(train_command(config, seed, folder, args), folder / "cell.log", left)
        if code == 0 and not evaluated:
            code = evaluate_final(folder, args)
        print(f"{time.perf_counter() - began:7.0f}s {folder.name}: exit {code}", flush=True)
        with lock:
            write_rows(collect(cells, args), args)

    if not args.collect_only:
        args.runs.mkdir(parents=True, exist_ok=True)
        warm_cache(args, args.configs[0])
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(one, cells))
    write_rows(collect(cells, args), args)
    finished = {row["cell"] for row in collect(cells, args)}
    wanted = {cell_name(config, seed) for config, seed in cells}
    print(f"{len(finished & wanted)} of {len(cells)} cells finished: {args.out}")


if __name__ == "__main__":
    main()
