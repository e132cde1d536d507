"""Crash safety: kill -9 a long command at random moments, rerun it, compare with a clean run.

For each command (the smoke run covers classifier training, the GAN, its metrics, the search and
the final training; `compare` covers the comparison's cells), one uninterrupted run gives the
reference folder. Then, ``--kills`` times, the same command starts in a fresh folder, is killed
with SIGKILL after a random delay, and is rerun (killed again while time is left in the
attempt, up to ``--max-kills-per-try``) until it exits 0. A finish counts as identical when
every file of the reference exists and holds the same content, except wall-clock fields
(seconds, times, dates), logs and the folder's own path (it appears in commands and configs);
safetensors are compared tensor by tensor.

    python benchmarks/kill_resume.py --kills 5 --out results/benchmarks/kill-resume.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

TIME_KEYS = ("seconds", "time", "wall", "started", "finished", "date", "elapsed", "when")
SKIPPED_SUFFIXES = (".log", ".png", ".html", ".md", ".tmp")
SKIPPED_NAMES = {"stage.json", "run.json"}  # wall time and host of each session only


def ganpso(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "ganpso"), *args]


def commands(data: str, work: Path) -> dict[str, Any]:
    """Name -> function of a fresh folder returning the command that fills it. The comparison
    runs on the smoke run's reference folder, so that one is made first."""
    smoke = ["--profile", "smoke", "--set", f"data.source={data}", "--set", "data.cache_dir=null"]
    cells = ["--methods", "cnn", "gan_fixed", "--seeds", "0"]
    return {
        "run-smoke": lambda out: ganpso("run", *smoke, "--out", str(out)),
        "compare-smoke": lambda out: ganpso(
            "compare", "--run", str(work / "run-smoke-reference"), *cells, "--out", str(out)
        ),
    }


def without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if not any(t in k for t in TIME_KEYS)}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def same_file(a: Path, b: Path, roots: tuple[Path, Path]) -> bool:
    """Equal content, the two folders' own paths (in commands and configs) aside."""
    if a.suffix == ".safetensors":
        ta, tb = load_file(a), load_file(b)
        return ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)
    if a.suffix == ".npz":
        with np.load(a) as x, np.load(b) as y:
            return x.files == y.files and all(np.array_equal(x[k], y[k]) for k in x.files)
    texts = [
        p.read_text().replace(str(root), "<folder>") for p, root in zip((a, b), roots, strict=True)
    ]
    if a.suffix == ".json":
        return without_times(json.loads(texts[0])) == without_times(json.loads(texts[1]))
    if a.suffix == ".jsonl":
        rows = [[json.loads(line) for line in t.splitlines() if line] for t in texts]
        return without_times(rows[0]) == without_times(rows[1])
    return texts[0] == texts[1]


def compared_files(folder: Path) -> list[Path]:
    return sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix not in SKIPPED_SUFFIXES
        and p.name not in SKIPPED_NAMES
        and p.suffix not in (".pt",)  # resume state: its RNG and timing may differ by design
    )


def differences(reference: Path, candidate: Path) -> list[str]:
    found = []
    for rel in compared_files(reference):
        other = candidate / rel
        if not other.exists():
            found.append(f"missing {rel}")
        elif not same_file(reference / rel, other, (reference, candidate)):
            found.append(f"differs {rel}")
    return found


def run_to_end(cmd: list[str], env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "ab") as handle:
        subprocess.run(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started


def killed_run(
    cmd: list[str], env: dict[str, str], log: Path, duration: float, rng: random.Random, kills: int
) -> dict[str, Any]:
    """Kill after random delays (``kills`` times at most), then let it finish."""
    delays = []
    for _ in range(kills):
        delay = rng.uniform(0.05, 1.0) * duration
        with open(log, "ab") as handle:
            process = subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                delays.append(round(delay, 2))
                continue
        if process.returncode == 0:
            return {"kills": delays, "finished_early": True}
    run_to_end(cmd, env, log)
    return {"kills": delays, "finished_early": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--kills", type=int, default=5, help="killed runs per command")
    parser.add_argument("--max-kills-per-try", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/kill-resume.json"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    work = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "cpu": platform.processor() or platform.machine(),
        "commands": {},
    }
    with contextlib.suppress(OSError, StopIteration):
        report["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    for name, build in commands(str(Path(args.data).resolve()), work).items():
        reference = work / f"{name}-reference"
        duration = run_to_end(build(reference), env, work / f"{name}.log")
        print(f"{name}: reference run {duration:.0f} s", flush=True)
        trials = []
        for index in range(args.kills):
            folder = work / f"{name}-{index}"
            cmd = build(folder)
            trial = killed_run(
                cmd, env, work / f"{name}.log", duration, rng, args.max_kills_per_try
            )
            trial["differences"] = differences(reference, folder)[:10]
            trial["identical"] = not trial["differences"]
            trials.append(trial)
            print(f"{name} #{index}: kills at {trial['kills']} s, identical {trial['identical']}")
            shutil.rmtree(folder, ignore_errors=True)
        report["commands"][name] = {
            "reference_seconds": round(duration, 1),
            "killed_runs": len(trials),
            "kills": sum(len(t["kills"]) for t in trials),
            "identical_finishes": sum(t["identical"] for t in trials),
            "trials": trials,
        }
    shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v["identical_finishes"] for k, v in report["commands"].items()}))


if __name__ == "__main__":
    main()
