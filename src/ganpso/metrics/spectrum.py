"""Artefacts as a number: the radially averaged power spectrum of faces, fakes against real.

Upsampling by transposed convolution leaves a checkerboard, which shows as excess power at high
spatial frequencies, up to the corners of the spectrum (the diagonal Nyquist frequency, radius
``S / sqrt(2)``). Each image has its mean removed, its 2-D power ``|FFT|^2`` is averaged over
rings of equal integer radius (the corner rings are partial) and over images.
``high_frequency_ratio`` is the fakes' mean power over the real faces' at radii from ``band`` x
the Nyquist radius ``S // 2`` up: 1 is the data's own texture, above it excess grid or streaks,
below it blur. A grid is narrow in frequency, so ring means can hide it: ``grid_peak_ratio``
is the largest fake-over-real power ratio at the frequencies a grid of period 2 or 4 pixels
puts its energy on (each coordinate a multiple of ``S / 4``, the mean left out).

Example:
    >>> faces = np.random.default_rng(0).random((8, 48, 48))
    >>> high_frequency_ratio(faces, faces)
    1.0
"""

from __future__ import annotations

import numpy as np

HIGH_BAND = 0.5  # the upper half of the frequencies, up to Nyquist


def radial_power_spectrum(images: np.ndarray) -> np.ndarray:
    """Mean power per integer radius ``(R,)`` of square images ``(N, S, S)``, R covering the
    corners (radius up to ``S / sqrt(2)``)."""
    size = np.shape(images)[-1]
    power = np.fft.fftshift(mean_power(images))  # (S, S), zero frequency in the centre
    offsets = np.arange(size) - size // 2
    radius = np.rint(np.hypot(*np.meshgrid(offsets, offsets, indexing="ij"))).astype(int)
    totals = np.bincount(radius.ravel(), weights=power.ravel())
    counts = np.bincount(radius.ravel())
    return totals / np.maximum(counts, 1)


def mean_power(images: np.ndarray) -> np.ndarray:
    """Mean 2-D power spectrum ``(S, S)`` of images ``(N, S, S)``, each with its mean removed."""
    images = np.asarray(images, dtype=np.float64)
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    return (np.abs(np.fft.fft2(centred)) ** 2).mean(axis=0)


def grid_peak_ratio(fakes: np.ndarray, real: np.ndarray) -> tuple[float, tuple[int, int]]:
    """The largest fakes-over-real power ratio at a grid frequency, and that frequency."""
    fake_power, real_power = mean_power(fakes), mean_power(real)
    step = np.shape(real)[-1] // 4
    grid = [(u, v) for u in range(0, 4 * step, step) for v in range(0, 4 * step, step)]
    ratios = {(u, v): fake_power[u, v] / real_power[u, v] for u, v in grid if (u, v) != (0, 0)}
    peak = max(ratios, key=ratios.get)
    return round(float(ratios[peak]), 4), (int(peak[0]), int(peak[1]))


def high_frequency_ratio(fakes: np.ndarray, real: np.ndarray, band: float = HIGH_BAND) -> float:
    """Mean power of the fakes over the real faces' at radii >= ``band`` x Nyquist."""
    fake_spectrum, real_spectrum = radial_power_spectrum(fakes), radial_power_spectrum(real)
    start = int(np.ceil(band * (np.shape(real)[-1] // 2)))
    return round(float(fake_spectrum[start:].mean() / real_spectrum[start:].mean()), 4)
