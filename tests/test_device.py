"""Precision resolution: ``auto`` asks for bf16 only where it is faster than fp32."""

from __future__ import annotations

import pytest
import torch

from ganpso import device as device_module
from ganpso.device import autocast, resolve_precision

CPU = torch.device("cpu")


def no_probe() -> float:
    raise AssertionError("the flags alone decide here")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2", "fma"}, "fp32"),  # bf16 would be emulated, several times slower than fp32
        ({"avx512f", "amx_tile", "amx_bf16"}, "bf16"),
    ],
)
def test_auto_precision_follows_the_cpu_flags(monkeypatch, flags, expected) -> None:
    monkeypatch.setattr(device_module, "cpu_flags", lambda: flags)
    monkeypatch.setattr(device_module, "bf16_speedup", no_probe)
    assert resolve_precision("auto", CPU) == expected


@pytest.mark.parametrize(("speedup", "expected"), [(2.0, "bf16"), (1.1, "fp32"), (0.6, "fp32")])
def test_avx512_bf16_without_amx_takes_bf16_only_where_it_measures_faster(
    monkeypatch, speedup, expected
) -> None:
    monkeypatch.setattr(device_module, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    monkeypatch.setattr(device_module, "bf16_speedup", lambda: speedup)
    assert resolve_precision("auto", CPU) == expected


@pytest.mark.parametrize("mode", [torch.inference_mode, torch.no_grad])
def test_the_probe_runs_inside_an_evaluation(mode) -> None:
    """An evaluation may be the first to ask for ``auto``: the probe's backward still runs."""
    with mode():
        fp32_seconds = device_module.conv_step_seconds(bf16=False, repeats=1)
    assert 0 < fp32_seconds < 60


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
