"""The artefact measure: the radially averaged power spectrum and its high-frequency ratio."""

from __future__ import annotations

import numpy as np
import pytest

from ganpso.metrics.spectrum import grid_peak_ratio, high_frequency_ratio, radial_power_spectrum


def smooth_faces(n: int = 64, size: int = 48, seed: int = 0) -> np.ndarray:
    """Blurred noise plus a little sensor noise: most power at low frequencies, some at all."""
    rng = np.random.default_rng(seed)
    noise = rng.random((n, size, size))
    kernel = np.ones(5) / 5
    blurred = noise
    for axis in (1, 2):
        blurred = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, blurred)
    return blurred + 0.02 * rng.standard_normal((n, size, size))


def test_the_ring_means_keep_parseval_for_a_single_frequency() -> None:
    size = 48
    x = np.arange(size)
    wave = np.cos(2 * np.pi * 6 * x / size)[None, :].repeat(size, 0)[None]  # frequency 6 on x
    spectrum = radial_power_spectrum(wave)
    assert spectrum.argmax() == 6
    ring = np.rint(np.hypot(*np.meshgrid(x - 24, x - 24, indexing="ij"))) == 6
    total = (np.abs(np.fft.fft2(wave[0] - wave[0].mean())) ** 2).sum()
    assert spectrum[6] * ring.sum() == pytest.approx(total)  # all the energy sits on ring 6


def test_a_checkerboard_raises_the_high_frequency_ratio_and_blur_lowers_it() -> None:
    real = smooth_faces()
    grid = np.indices((48, 48)).sum(0) % 2  # the transposed convolution's pattern
    assert high_frequency_ratio(real + 0.2 * grid, real) > 1.2
    assert high_frequency_ratio(smooth_faces(seed=1), real) == pytest.approx(1.0, abs=0.1)
    flat = np.full_like(real, real.mean())  # no texture at all
    assert high_frequency_ratio(flat + 1e-3 * smooth_faces(seed=2), real) < 0.1


def test_the_grid_peak_finds_stripes_that_ring_means_hide() -> None:
    real = smooth_faces()
    stripes = (np.arange(48) % 2)[None, None, :] * np.ones((1, 48, 1))  # period 2 along x
    ratio, frequency = grid_peak_ratio(real + 0.05 * stripes, real)
    assert frequency == (0, 24) and ratio > 2
    assert grid_peak_ratio(smooth_faces(seed=1), real)[0] < 1.5
