"""Report plots with matplotlib's Agg backend: confusion matrices, training curves, class bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_confusion_matrix(
    matrix: Any, classes: Sequence[str], path: str | Path, title: str = ""
) -> None:
    """Two panels: counts and row-normalised (each row sums to 1: the per-class recall view)."""
    counts = np.asarray(matrix, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    figure, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for axis, values, label, fmt in (
        (axes[0], counts, "counts", "d"),
        (axes[1], normalised, "row-normalised", ".2f"),
    ):
        image = axis.imshow(values, cmap="Blues")
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
        axis.set(
            xticks=range(len(classes)),
            yticks=range(len(classes)),
            xlabel="predicted",
            ylabel="true",
            title=label,
        )
        axis.set_xticklabels(classes, rotation=45, ha="right")
        axis.set_yticklabels(classes)
        threshold = values.max() / 2 if values.size else 0
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                color = "white" if values[i, j] > threshold else "black"
                axis.text(
                    j,
                    i,
                    format(values[i, j], fmt),
                    ha="center",
                    va="center",
                    color=color,
                    fontsize=8,
                )
    if title:
        figure.suptitle(title)
    _save(figure, path)


def plot_training_curves(history: Sequence[dict[str, float]], path: str | Path) -> None:
    """Loss, accuracy / macro-F1 and learning rate per epoch (missing keys are skipped)."""
    panels = (
        ("loss", ("train/loss", "val/loss")),
        ("accuracy / macro-F1", ("train/accuracy", "val/accuracy", "val/macro_f1")),
        ("learning rate", ("lr",)),
    )
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    for axis, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            if history and all(key in row for row in history):
                axis.plot(epochs, [row[key] for row in history], marker=".", label=key)
        axis.set(title=title, xlabel="epoch")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend()
    _save(figure, path)


def plot_per_class_bars(reports: dict[str, dict[str, Any]], metric: str, path: str | Path) -> None:
    """Grouped bars of one per-class metric (e.g. ``recall``) for several named reports."""
    names = list(reports)
    classes = list(next(iter(reports.values()))["per_class"]) if reports else []
    width = 0.8 / max(len(names), 1)
    figure, axis = plt.subplots(figsize=(max(8, len(classes) * 1.3), 4.5))
    for i, name in enumerate(names):
        values = [reports[name]["per_class"][c][metric] for c in classes]
        axis.bar(np.arange(len(classes)) + i * width - 0.4 + width / 2, values, width, label=name)
    axis.set(xticks=range(len(classes)), ylabel=metric, ylim=(0, 1), title=f"per-class {metric}")
    axis.set_xticklabels(classes)
    axis.grid(axis="y", alpha=0.3)
    if names:
        axis.legend()
    _save(figure, path)


def _save(figure: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_reliability(
    curves: dict[str, dict[str, Any]], path: str | Path, title: str = "", min_count: int = 10
) -> None:
    """Reliability diagram: accuracy against confidence per bin, one line per named summary
    (``calibration_summary`` output, e.g. before / after temperature scaling), with its ECE;
    bins of fewer than ``min_count`` faces are left out of the lines (not of the ECE)."""
    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, summary in curves.items():
        bins = summary["bins"]
        confidence, accuracy = np.asarray(bins["confidence"]), np.asarray(bins["accuracy"])
        kept = np.asarray(bins["count"]) >= min_count  # a bin of a few faces is noise
        axis.plot(
            confidence[kept], accuracy[kept], marker="o", label=f"{name} (ECE {summary['ece']:.3f})"
        )
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=title)
    axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
