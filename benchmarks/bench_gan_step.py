"""GAN training steps per second in each precision, on this machine, in one run.

The GAN's ``precision: auto`` picks bf16 wherever the CPU has native bf16 arithmetic (AVX-512
BF16 or AMX), as the classifier does. Whether that also pays off for the GAN's step (small
widths, transposed/upsampling convolutions, spectral norm, two optimizers) is measured here:
the real ``GanTrainer.train_step`` on random faces, after a warm-up, for each precision, with a
``torch.profiler`` table of where the default step's time goes. Writes
``results/benchmarks/gan-step-<machine kind>.json``.

    python benchmarks/bench_gan_step.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ganpso.data.dataset import Split
from ganpso.device import describe_device, resolve_device, resolve_precision
from ganpso.gan import GanTrainer
from ganpso.gan.config import GanConfig
from machine import machine_facts, machine_kind, matmul_peaks

PRECISIONS = ("fp32", "bf16")


def random_faces(size: int, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (size, 48, 48), dtype=np.uint8)
    return Split(images, np.arange(size, dtype=np.int64) % 7)


def trainer_for(config: GanConfig, out: Path) -> GanTrainer:
    trainer = GanTrainer(config, out, log=lambda _: None)
    trainer.prepare_data(random_faces(1024))
    return trainer


def steps_per_s(trainer: GanTrainer, steps: int, warmup: int = 5) -> float:
    """Median steps/s over ``steps`` timed steps after ``warmup`` untimed ones."""
    for _ in range(warmup):
        trainer.train_step()
        trainer.step += 1
    rates = []
    for _ in range(steps):
        began = time.perf_counter()
        trainer.train_step()
        trainer.step += 1
        rates.append(1 / (time.perf_counter() - began))
    return statistics.median(rates)


def where_time_goes(trainer: GanTrainer, steps: int = 5, rows: int = 10) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            trainer.train_step()
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {"op": e.key, "share": round(e.self_cpu_time_total / total, 3), "calls": e.count}
        for e in events[:rows]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/gan.yaml"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, help="default: results/benchmarks/gan-step-<kind>.json")
    args = parser.parse_args()

    config = replace(GanConfig.from_yaml(args.config), device=args.device)
    device = resolve_device(args.device)
    peaks = matmul_peaks(device=str(device))
    print(f"matmul peaks (GFLOP/s): {peaks}")
    default = resolve_precision(config.precision, device)
    rows, profile_rows = {}, []
    with tempfile.TemporaryDirectory() as scratch:
        for precision in PRECISIONS:
            trainer = trainer_for(replace(config, precision=precision), Path(scratch))
            rate = steps_per_s(trainer, args.steps)
            rows[precision] = {
                "steps_per_s": round(rate, 2),
                "images_per_s": round(rate * config.batch_size, 1),
                "steps_in_45_min": int(rate * 45 * 60),
            }
            print(f"{precision:5s} {rows[precision]}")
            if precision == default:
                profile_rows = where_time_goes(trainer)
    result = {
        "benchmark": "GAN training steps per second by precision",
        "batch_size": config.batch_size,
        "g_width": config.g_width,
        "d_width": config.d_width,
        "matmul_peak_gflop_per_s": peaks,
        "precisions": rows,
        "default_precision": default,
        "default_vs_fp32": round(rows[default]["steps_per_s"] / rows["fp32"]["steps_per_s"], 2),
        "where_time_goes": profile_rows,
        "device": describe_device(device),
        "machine": machine_facts(),
        "command": "python benchmarks/bench_gan_step.py "
        + f"--config {args.config} --steps {args.steps} --device {args.device}",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    out = args.out or Path(f"results/benchmarks/gan-step-{machine_kind()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
