"""Training throughput of the default classifier: plain fp32 against the fast modes, one run.

Each mode runs the real training step (augmentation, forward, loss, backward, SGD step) on
batches of the default size, after a warm-up. Writes JSON with the device that produced it.

    python benchmarks/bench_train.py --out results/benchmarks/train_throughput.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganpso.classifier.augment import augment_batch
from ganpso.classifier.config import TrainConfig
from ganpso.classifier.models import build_model, count_parameters
from ganpso.device import autocast, describe_device, resolve_device

MODES = {  # name: (precision, channels_last)
    "fp32": ("fp32", False),
    "fp32+channels_last": ("fp32", True),
    "bf16": ("bf16", False),
    "bf16+channels_last": ("bf16", True),
}
TRAINING_IMAGES = 28_709


def measure(
    config: TrainConfig, precision: str, channels_last: bool, steps: int, device: torch.device
) -> float:
    """Median images/s over ``steps`` timed training steps."""
    torch.manual_seed(0)
    model = build_model(config.model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (config.batch_size, 48, 48), dtype=torch.uint8)
    labels = torch.randint(0, 7, (config.batch_size,), device=device)

    def step() -> None:
        batch = augment_batch(images, config.augment, generator).to(device)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            logits = model(batch)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    rates = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        rates.append(config.batch_size / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--out", type=Path, default=Path("results/benchmarks/train_throughput.json")
    )
    args = parser.parse_args()

    config = TrainConfig.from_yaml(args.config)
    device = resolve_device(args.device)
    rows = {}
    for name, (precision, channels_last) in MODES.items():
        rate = measure(config, precision, channels_last, args.steps, device)
        rows[name] = {"images_per_s": round(rate, 1), "epoch_s": round(TRAINING_IMAGES / rate, 1)}
        print(
            f"{name:20s} {rate:8.1f} images/s  ~{TRAINING_IMAGES / rate:6.1f} s per Training epoch"
        )
    chosen = "bf16+channels_last" if config.precision == "bf16" and config.channels_last else None
    result = {
        "benchmark": "classifier training throughput",
        "model": config.model.name,
        "parameters": count_parameters(build_model(config.model)),
        "batch_size": config.batch_size,
        "crop": config.augment.crop,
        "modes": rows,
        "chosen_mode": chosen,
        "speedup_chosen_vs_fp32": round(
            rows["bf16+channels_last"]["images_per_s"] / rows["fp32"]["images_per_s"], 2
        ),
        "device": describe_device(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "python benchmarks/bench_train.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
