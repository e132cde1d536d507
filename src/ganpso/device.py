"""Device choice, mixed precision and a plain description of the hardware for reports."""

from __future__ import annotations

import contextlib
import functools
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from ganpso.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an unavailable CUDA request is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: CUDA is not available on this machine")
    return device


# CPU flags of native bf16 arithmetic; without them oneDNN emulates bf16, several times slower
# than fp32
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# bf16 has to beat fp32 by this factor on the probe before ``auto`` takes it: a machine near
# parity keeps fp32's numerics
BF16_MIN_SPEEDUP = 1.25


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` has bf16 arithmetic: GPUs since Ampere, CPUs with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def bf16_pays(device: torch.device) -> bool:
    """Whether bf16 trains faster than fp32 on ``device``.

    GPUs with bf16 and CPUs with AMX: yes. CPUs without native bf16: no. CPUs with AVX512-BF16
    but no AMX differ (some AMD EPYCs run the classifier's step twice as fast in bf16, some
    Intel Xeons at two thirds of fp32's speed), so a short convolution probe decides there.
    """
    if not native_bf16(device):
        return False
    if device.type == "cuda" or "amx_bf16" in cpu_flags():
        return True
    return bf16_speedup() >= BF16_MIN_SPEEDUP


@functools.cache
def bf16_speedup() -> float:
    """fp32's time over bf16's for a training-shaped 3x3 convolution, forward and backward,
    on this CPU (about 0.2 s, once per process)."""
    return conv_step_seconds(bf16=False) / conv_step_seconds(bf16=True)


def conv_step_seconds(bf16: bool, repeats: int = 3) -> float:
    # a backward pass, also when asked first from inside an evaluation's inference mode
    with torch.inference_mode(False), torch.enable_grad():
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(64, 64, 20, 20, generator=generator)
        images = images.contiguous(memory_format=torch.channels_last)
        weight = torch.randn(64, 64, 3, 3, generator=generator, requires_grad=True)

        def step() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                output = torch.nn.functional.conv2d(images, weight, padding=1)
            output.float().sum().backward()

        step()  # the first call builds oneDNN's kernels
        timings = []
        for _ in range(repeats):
            began = time.perf_counter()
            step()
            timings.append(time.perf_counter() - began)
    return min(timings)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where it is faster than fp32 on the device, else ``fp32``; others
    unchanged."""
    if precision != "auto":
        return precision
    return "bf16" if bf16_pays(device) else "fp32"


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bfloat16 autocast for forward passes (several times faster on AMX CPUs and on GPUs)."""
    enabled = resolve_precision(precision, device) == "bf16"
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled):
        yield


def describe_device(device: torch.device) -> str:
    """E.g. ``cpu: Intel(R) Xeon(R) ... (2 threads)`` or ``cuda: NVIDIA H100 80GB HBM3``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_model()} ({torch.get_num_threads()} threads)"


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none), read once:
    ``autocast`` asks on every batch."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
