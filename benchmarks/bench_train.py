"""Training throughput of the default classifier as a fraction of the machine's peak, one run.

Each row runs the real training step (augmentation, forward, loss, backward, SGD step) after a
warm-up and reports images/s and utilisation: model FLOPs per image (forward + backward, counted
by ``torch.utils.flop_counter``) x images/s over the matmul peak measured in the same run, in the
row's precision (bf16 or fp32; the default row runs the recipe's precision as it resolves here).
Levers measured, not guessed: precision and memory format, batch size, ``torch.compile``, and
model widths (``--widths``); a ``torch.profiler`` table says where the default step's time goes,
and the augmentation's own cost is timed apart. Writes
``results/benchmarks/train-<machine kind>.json``.

    python benchmarks/bench_train.py --widths 40 48 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ganpso.classifier.augment import augment_batch
from ganpso.classifier.config import TrainConfig
from ganpso.classifier.models import build_model, count_parameters
from ganpso.device import (
    autocast,
    bf16_speedup,
    describe_device,
    native_bf16,
    resolve_device,
    resolve_precision,
)
from machine import machine_facts, machine_kind, matmul_peaks

MODES = {  # name: (precision, channels_last)
    "fp32": ("fp32", False),
    "fp32+channels_last": ("fp32", True),
    "bf16": ("bf16", False),
    "bf16+channels_last": ("bf16", True),
}
BATCH_SIZES = (64, 128, 256)
TRAINING_IMAGES = 28_709


def training_step(
    config: TrainConfig, mode: str, batch_size: int, device: torch.device, compile: bool = False
) -> Callable[[], None]:
    """One real training step on a fixed random uint8 batch, as ``train_one_epoch`` runs it."""
    precision, channels_last = MODES[mode]
    torch.manual_seed(0)
    model = build_model(config.model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch_size, 48, 48), dtype=torch.uint8)
    labels = torch.randint(0, 7, (batch_size,), device=device)

    def step() -> None:
        batch = augment_batch(images, config.augment, generator).to(device)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            logits = forward(batch)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def images_per_s(step: Callable[[], None], batch_size: int, steps: int) -> tuple[float, float]:
    """Median images/s over ``steps`` timed steps, and the seconds the 3 warm-up steps took."""
    began = time.perf_counter()
    for _ in range(3):
        step()
    warmup = time.perf_counter() - began
    rates = []
    for _ in range(steps):
        began = time.perf_counter()
        step()
        rates.append(batch_size / (time.perf_counter() - began))
    return statistics.median(rates), warmup


def flops_per_image(config: TrainConfig) -> float:
    """Forward + backward FLOPs of one image at the training crop."""
    model = build_model(config.model)
    crop = config.augment.crop
    batch = torch.zeros(8, 1, crop, crop)
    with FlopCounterMode(display=False) as counter:
        model(batch).sum().backward()
    return counter.get_total_flops() / len(batch)


def where_time_goes(step: Callable[[], None], rows: int = 8) -> list[dict]:
    """The ops with the most self CPU time over 5 default steps, as shares of the total."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(5):
            step()
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {"op": e.key, "share": round(e.self_cpu_time_total / total, 3), "calls": e.count}
        for e in events[:rows]
    ]


def augmentation_share(config: TrainConfig, batch_size: int, step_s: float) -> float:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch_size, 48, 48), dtype=torch.uint8)
    began = time.perf_counter()
    for _ in range(20):
        augment_batch(images, config.augment, generator)
    return round((time.perf_counter() - began) / 20 / step_s, 3)


def row(rate: float, flops: float, peak: float, **extra: float) -> dict:
    return {
        "images_per_s": round(rate, 1),
        "epoch_s": round(TRAINING_IMAGES / rate, 1),
        "gflop_per_s": round(rate * flops / 1e9, 1),
        "utilisation": round(rate * flops / 1e9 / peak, 3),
        **extra,
    }


def width_row(
    config: TrainConfig, width: int, mode: str, device: torch.device, steps: int, peaks: dict
) -> dict:
    """The default step at another model width: wider layers do more arithmetic per byte moved."""
    widened = replace(config, model=replace(config.model, width=width))
    step = training_step(widened, mode, config.batch_size, device)
    rate, _ = images_per_s(step, config.batch_size, steps)
    flops = flops_per_image(widened)
    result = row(rate, flops, peaks[MODES[mode][0]], gflop_per_image=round(flops / 1e9, 4))
    print(f"width {width:4d}           {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument(
        "--widths", nargs="*", type=int, default=[], help="also time these model widths"
    )
    parser.add_argument("--out", type=Path, help="default: results/benchmarks/train-<kind>.json")
    args = parser.parse_args()

    config = TrainConfig.from_yaml(args.config)
    device = resolve_device(args.device)
    peaks = matmul_peaks(device=str(device))
    print(f"matmul peaks (GFLOP/s): {peaks}")
    flops = flops_per_image(config)
    # the recipe's precision as it resolves here (auto: bf16 only where it is native)
    default_mode = f"{resolve_precision(config.precision, device)}+channels_last"
    default_peak = peaks[default_mode.split("+")[0]]
    modes = {}
    for mode in MODES:
        step = training_step(config, mode, config.batch_size, device)
        rate, _ = images_per_s(step, config.batch_size, args.steps)
        modes[mode] = row(rate, flops, peaks[MODES[mode][0]])
        print(f"{mode:20s} {modes[mode]}")
    batch_sizes = {}
    for size in BATCH_SIZES:
        step = training_step(config, default_mode, size, device)
        batch_sizes[str(size)] = row(images_per_s(step, size, args.steps)[0], flops, default_peak)
        print(f"batch {size:4d}           {batch_sizes[str(size)]}")
    levers = {}
    if not args.no_compile:
        step = training_step(config, default_mode, config.batch_size, device, compile=True)
        rate, warmup = images_per_s(step, config.batch_size, args.steps)
        levers["torch.compile"] = row(
            rate, flops, default_peak, compile_and_warmup_s=round(warmup, 1)
        )
        print(f"torch.compile        {levers['torch.compile']}")
    widths = {
        str(width): width_row(config, width, default_mode, device, args.steps, peaks)
        for width in args.widths
    }
    default_step = training_step(config, default_mode, config.batch_size, device)
    default = modes[default_mode]
    result = {
        "benchmark": "classifier training throughput and utilisation",
        "model": config.model.name,
        "parameters": count_parameters(build_model(config.model)),
        "batch_size": config.batch_size,
        "crop": config.augment.crop,
        "gflop_per_image": round(flops / 1e9, 4),
        "matmul_peak_gflop_per_s": peaks,
        "images_per_s": default["images_per_s"],
        "utilisation": default["utilisation"],
        "utilisation_is": "model FLOPs x images/s / this run's matmul peak in the row's precision",
        "modes": modes,
        "batch_sizes": batch_sizes,
        "levers": levers,
        "widths": widths,
        "default_mode": default_mode,
        # without it bf16 is emulated: its "peak" and utilisation describe the emulation
        "native_bf16": native_bf16(device),
        # the probe ``precision: auto`` consults on CPUs with AVX512-BF16 and no AMX (recorded
        # wherever bf16 is native, for comparison)
        "bf16_probe_speedup": (
            round(bf16_speedup(), 2) if device.type == "cpu" and native_bf16(device) else None
        ),
        "speedup_default_vs_fp32": round(
            default["images_per_s"] / modes["fp32"]["images_per_s"], 2
        ),
        "augmentation_share_of_step": augmentation_share(
            config, config.batch_size, config.batch_size / default["images_per_s"]
        ),
        "where_time_goes": where_time_goes(default_step),
        "machine": machine_facts(),
        "device": describe_device(device),
        "command": "python " + " ".join(sys.argv),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = args.out or Path(f"results/benchmarks/train-{machine_kind()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
