"""Precision resolution: ``auto`` asks for bf16 only where the hardware computes it natively."""

from __future__ import annotations

import pytest
import torch

from ganpso import device as device_module
from ganpso.device import autocast, resolve_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2", "fma"}, "fp32"),  # bf16 would be emulated, several times slower than fp32
        ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),
        ({"avx512f", "amx_tile", "amx_bf16"}, "bf16"),
    ],
)
def test_auto_precision_follows_the_cpu_flags(monkeypatch, flags, expected) -> None:
    monkeypatch.setattr(device_module, "cpu_flags", lambda: flags)
    assert resolve_precision("auto", CPU) == expected


@pytest.mark.parametrize("asked", ["bf16", "fp32"])
def test_an_explicit_precision_is_kept(monkeypatch, asked) -> None:
    monkeypatch.setattr(device_module, "cpu_flags", lambda: {"avx2"})
    assert resolve_precision(asked, CPU) == asked


def test_autocast_runs_what_auto_resolves_to(monkeypatch) -> None:
    layer = torch.nn.Linear(4, 4)
    inputs = torch.randn(2, 4)
    monkeypatch.setattr(device_module, "cpu_flags", lambda: {"avx2"})
    with autocast(CPU, "auto"):
        assert layer(inputs).dtype == torch.float32
    monkeypatch.setattr(device_module, "cpu_flags", lambda: {"amx_bf16"})
    with autocast(CPU, "auto"):
        assert layer(inputs).dtype == torch.bfloat16
