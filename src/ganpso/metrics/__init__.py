"""Metrics the mission names (accuracy, precision, recall, F1, G-measure, ...) and their plots."""

from ganpso.metrics.classification import (
    bootstrap_ci,
    build_metrics_report,
    classification_metrics,
    confusion_matrix,
    format_metrics_table,
    per_class_scores,
    read_json,
    write_json,
)
from ganpso.metrics.plots import plot_confusion_matrix, plot_per_class_bars, plot_training_curves

__all__ = [
    "bootstrap_ci",
    "build_metrics_report",
    "classification_metrics",
    "confusion_matrix",
    "format_metrics_table",
    "per_class_scores",
    "plot_confusion_matrix",
    "plot_per_class_bars",
    "plot_training_curves",
    "read_json",
    "write_json",
]
