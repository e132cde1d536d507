"""Load times of the full FER2013 archive: cold (decode every JPEG) and warm (from the cache).

Targets from the foundation issue: cold <= 10 s, warm <= 1 s on a 2-core CPU. Uses an empty
temporary cache folder so that "cold" really decodes. Writes JSON with the machine it ran on.

    python benchmarks/bench_data.py --out results/benchmarks/data_load.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ganpso.data import load_dataset
from ganpso.data.config import DataConfig
from ganpso.device import cpu_model


def timed_load(config: DataConfig) -> tuple[float, int]:
    start = time.perf_counter()
    dataset = load_dataset(config)
    seconds = time.perf_counter() - start
    return seconds, sum(len(split.labels) for split in dataset.splits.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013.zip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/data_load.json"))
    args = parser.parse_args()

    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache_dir:
            config = DataConfig(source=args.data, cache_dir=cache_dir)
            seconds, images = timed_load(config)
            cold.append(seconds)
            warm.append(timed_load(config)[0])
    result = {
        "benchmark": "FER2013 load time",
        "source": args.data,
        "images": images,
        "cold_s": {
            "median": round(statistics.median(cold), 3),
            "runs": [round(s, 3) for s in cold],
        },
        "warm_s": {
            "median": round(statistics.median(warm), 3),
            "runs": [round(s, 3) for s in warm],
        },
        "targets_s": {"cold": 10.0, "warm": 1.0},
        "device": f"cpu: {cpu_model()} ({torch.get_num_threads()} threads)",
        "python": platform.python_version(),
        "command": f"python benchmarks/bench_data.py --data {args.data} --repeats {args.repeats}",
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(
        f"{images} images: cold {result['cold_s']['median']:.2f} s, "
        f"warm {result['warm_s']['median']:.3f} s (median of {args.repeats})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
