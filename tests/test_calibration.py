"""Temperature scaling: the measures against scikit-learn, the fit against a grid, and the
temperature travelling through the checkpoint, the predictor, the ONNX export and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve

from factories import write_kaggle_zip
from ganpso.classifier import Preprocessing, build_model, save_classifier
from ganpso.classifier.config import ModelConfig
from ganpso.cli import main
from ganpso.emotions import EMOTIONS
from ganpso.inference import EmotionPredictor
from ganpso.inference.calibration import write_temperature
from ganpso.metrics.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
    scaled_probabilities,
)


def overconfident_case(n: int = 4000, sharpen: float = 3.0, seed: int = 0):
    """Labels drawn from softmax(z); the model reports ``sharpen * z``: true T = sharpen."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 1.5, (n, 7))
    probs = scaled_probabilities(true_logits[None], 1.0)
    labels = np.array([rng.choice(7, p=p) for p in probs])
    return sharpen * true_logits[None], labels


def test_reliability_bins_match_sklearn() -> None:
    logits, labels = overconfident_case(n=2000)
    probs = scaled_probabilities(logits, 1.0)
    ours = reliability_bins(probs, labels, bins=10)
    correct = (probs.argmax(1) == labels).astype(int)
    accuracy, confidence = calibration_curve(correct, probs.max(1), n_bins=10, strategy="uniform")
    kept = np.asarray(ours["count"]) > 0
    np.testing.assert_allclose(np.asarray(ours["accuracy"])[kept], accuracy, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ours["confidence"])[kept], confidence, atol=1e-12)


def test_fitted_temperature_is_the_nll_minimum_and_lowers_ece() -> None:
    logits, labels = overconfident_case()
    temperature = fit_temperature(logits, labels)
    grid = np.exp(np.linspace(np.log(0.5), np.log(8), 400))
    best = grid[np.argmin([negative_log_likelihood(scaled_probabilities(logits, t), labels)
                           for t in grid])]  # fmt: skip
    assert temperature == pytest.approx(best, rel=0.02) and temperature == pytest.approx(3, rel=0.1)
    before = expected_calibration_error(scaled_probabilities(logits, 1.0), labels)
    after = expected_calibration_error(scaled_probabilities(logits, temperature), labels)
    assert after < before / 3


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    config = ModelConfig(name="vgg_small", width=4, dropout=0.0)
    path = tmp_path / "tiny.safetensors"
    save_classifier(path, build_model(config).eval(), config, EMOTIONS, Preprocessing())
    return path


def test_temperature_travels_through_checkpoint_predictor_and_onnx(checkpoint, tmp_path) -> None:
    from ganpso.inference.export import export_onnx

    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    plain = EmotionPredictor.from_pretrained(checkpoint).predict_faces(faces)
    write_temperature(checkpoint, {"temperature": 2.5, "fitted_on": "PublicTest", "n": 6,
                                   "tta": False, "before": {"ece": 0.2},
                                   "after_cross_fitted": {"ece": 0.1}})  # fmt: skip
    calibrated = EmotionPredictor.from_pretrained(checkpoint)
    assert calibrated.temperature == 2.5
    softer = calibrated.predict_faces(faces)
    assert (softer.argmax(1) == plain.argmax(1)).all()  # no prediction changes
    assert (softer.max(1) <= plain.max(1) + 1e-6).all()  # T > 1: less sure
    export_onnx(checkpoint, tmp_path / "tiny.onnx")
    exported = EmotionPredictor.from_pretrained(tmp_path / "tiny.onnx")
    assert exported.temperature == 2.5
    np.testing.assert_allclose(exported.predict_faces(faces), softer, atol=1e-4)


def test_cli_calibrate_writes_the_record_and_the_diagram(checkpoint, tmp_path, capsys) -> None:
    data = write_kaggle_zip(tmp_path / "fer.zip", per_class=3)
    out = tmp_path / "calibration"
    args = ["calibrate", str(checkpoint), "--data", str(data), "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    record = json.loads((out / "calibration.json").read_text())
    assert record["fitted_on"] == "PublicTest" and record["n"] == 21
    assert {"before", "after_in_sample", "after_cross_fitted"} <= set(record)
    assert (out / "reliability.png").stat().st_size > 0
    assert EmotionPredictor.from_pretrained(checkpoint).temperature == record["temperature"]
    assert "temperature" in capsys.readouterr().out
