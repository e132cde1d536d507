"""Occlusion saliency: shape and range, it finds the region a model looks at, ``--explain``."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from ganpso.cli import main
from ganpso.inference import EmotionPredictor
from ganpso.inference.saliency import explain_face, occlusion_map, overlay

REGION = (slice(30, 42), slice(8, 20))  # (rows, cols) the fake model below looks at


def region_model(faces: np.ndarray) -> np.ndarray:
    """Two classes; P(class 0) rises with the brightness of REGION alone. ``(N, 48, 48)`` in."""
    brightness = faces[:, REGION[0], REGION[1]].astype(np.float64).mean(axis=(1, 2))
    p0 = 1 / (1 + np.exp(-(brightness - 150) / 20))
    return np.stack([p0, 1 - p0], axis=1)


def bright_region_face() -> np.ndarray:
    face = np.full((48, 48), 120, np.uint8)
    face[REGION] = 250  # the informative part
    face[2:14, 30:44] = 120  # a blank part, spelled out for the test below
    return face


def test_occluding_the_informative_region_matters_and_a_blank_one_does_not() -> None:
    face = bright_region_face()
    heat = occlusion_map(region_model, face)
    assert heat.shape == (48, 48) and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    assert heat[REGION].mean() > 0.5
    assert heat[2:14, 30:44].max() == 0.0  # grey over grey: the probability does not move
    peak = np.unravel_index(heat.argmax(), heat.shape)
    assert REGION[0].start <= peak[0] < REGION[0].stop
    assert REGION[1].start <= peak[1] < REGION[1].stop


def test_explain_face_goes_through_predict_faces(monkeypatch, tiny_checkpoint) -> None:
    predictor = EmotionPredictor.from_pretrained(tiny_checkpoint)
    monkeypatch.setattr(predictor, "predict_faces", region_model)
    heat = explain_face(predictor, bright_region_face())
    np.testing.assert_array_equal(heat, occlusion_map(region_model, bright_region_face()))


def test_a_face_nothing_changes_gives_zeros() -> None:
    flat = np.full((48, 48), 120, np.uint8)
    heat = occlusion_map(region_model, flat)
    assert heat.shape == (48, 48) and not heat.any()


def test_real_models_torch_and_onnx_give_the_same_map(tiny_checkpoint, tmp_path) -> None:
    from ganpso.inference.export import export_onnx

    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    torch_heat = explain_face(EmotionPredictor.from_pretrained(tiny_checkpoint), face)
    assert torch_heat.shape == (48, 48) and torch_heat.dtype == np.float32
    assert torch_heat.min() >= 0.0 and torch_heat.max() <= 1.0
    pytest.importorskip("onnxruntime")
    export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx")
    onnx_heat = explain_face(EmotionPredictor.from_pretrained(tmp_path / "tiny.onnx"), face)
    np.testing.assert_allclose(onnx_heat, torch_heat, atol=1e-3)


def test_explain_face_refuses_other_inputs(tiny_checkpoint) -> None:
    predictor = EmotionPredictor.from_pretrained(tiny_checkpoint)
    with pytest.raises(ValueError, match="uint8"):
        explain_face(predictor, np.zeros((48, 48), np.float32))


def test_overlay_is_the_face_beside_the_heat_map() -> None:
    face = bright_region_face()
    image = overlay(face, occlusion_map(region_model, face), scale=2)
    assert image.shape == (96, 192, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[::2, :96:2, 0], face)  # left half: the face itself


def test_cli_explain_writes_one_png_per_face(tiny_checkpoint, tmp_path, capsys) -> None:
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 128).save(blank)  # too large to be taken as a tight crop
    maps = tmp_path / "maps"
    args = ["predict", str(photo), str(blank), "--csv", "--explain", str(maps)]
    code = main([*args, "--model", str(tiny_checkpoint)])
    captured = capsys.readouterr()
    assert code == 1  # the blank image has no face: the lead's exit codes stand
    assert sorted(p.name for p in maps.iterdir()) == ["astronaut-face0.png"]
    with Image.open(maps / "astronaut-face0.png") as image:
        assert image.size == (384, 192) and image.mode == "RGB"
    assert "wrote 1 saliency map(s)" in captured.err
    assert captured.out.startswith("source,face")  # the CSV on stdout is untouched


def test_cli_explain_names_equal_stems_apart(tiny_checkpoint, tmp_path, capsys) -> None:
    face = io.BytesIO()
    Image.fromarray(skdata.astronaut()).save(face, format="PNG")
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.png").write_bytes(face.getvalue())
    maps = tmp_path / "maps"
    args = ["predict", str(tmp_path / "a"), str(tmp_path / "b"), "--explain", str(maps)]
    assert main([*args, "--model", str(tiny_checkpoint)]) == 0
    assert sorted(p.name for p in maps.iterdir()) == ["x-2-face0.png", "x-face0.png"]
