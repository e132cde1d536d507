"""CNN emotion classifiers: registry, training loop, checkpoints and evaluation."""

from ganpso.classifier.checkpoint import (
    ClassifierCheckpoint,
    Preprocessing,
    load_classifier,
    save_classifier,
)
from ganpso.classifier.models import build_model, count_parameters, list_models, register_model
from ganpso.classifier.training import FitResult, evaluate, fit, predict_proba, train_one_epoch

__all__ = [
    "ClassifierCheckpoint",
    "FitResult",
    "Preprocessing",
    "build_model",
    "count_parameters",
    "evaluate",
    "fit",
    "list_models",
    "load_classifier",
    "predict_proba",
    "register_model",
    "save_classifier",
    "train_one_epoch",
]
