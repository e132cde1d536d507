"""Predictor, face detection, ONNX export and ``ganpso predict`` (the server: test_server)."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from ganpso.classifier import Preprocessing
from ganpso.classifier.augment import eval_views
from ganpso.cli import main
from ganpso.emotions import EMOTIONS
from ganpso.errors import CheckpointError, DataError
from ganpso.inference import (
    EmotionPredictor,
    crop_face,
    default_model_path,
    detect_faces,
    face_views,
    read_photo,
)

# scikit-image's bundled photo of astronaut Eileen Collins: one frontal face
ASTRONAUT_FACE_CENTRE = (222, 112)  # (x, y) of her face, checked by eye on the 512x512 photo


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint) -> EmotionPredictor:
    return EmotionPredictor.from_pretrained(tiny_checkpoint)


@pytest.mark.parametrize("tta", [False, True])
def test_face_views_equal_the_training_code(tta) -> None:
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    ours = face_views(faces, Preprocessing(), tta)
    theirs = torch.stack(eval_views(torch.from_numpy(faces), 40, tta)).numpy()
    assert ours.shape == (10 if tta else 2, 5, 1, 40, 40)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_predict_faces_probabilities_and_batch_invariance(tiny_checkpoint) -> None:
    faces = np.random.default_rng(1).integers(0, 256, (7, 48, 48), dtype=np.uint8)
    whole = EmotionPredictor.from_pretrained(tiny_checkpoint, batch_size=256).predict_faces(faces)
    pieces = EmotionPredictor.from_pretrained(tiny_checkpoint, batch_size=3).predict_faces(faces)
    assert whole.shape == (7, 7)
    np.testing.assert_allclose(whole.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(whole, pieces, atol=1e-6)


def test_detects_the_astronaut_face(astronaut) -> None:
    boxes = detect_faces(np.asarray(astronaut.convert("L")))
    assert len(boxes) == 1
    box = boxes[0]
    assert abs(box.x + box.width / 2 - ASTRONAUT_FACE_CENTRE[0]) < 20
    assert abs(box.y + box.height / 2 - ASTRONAUT_FACE_CENTRE[1]) < 20
    assert 80 <= box.width <= 160


def test_another_shipped_cascade_finds_the_same_face_and_a_missing_one_is_named(
    astronaut,
) -> None:
    gray = np.asarray(astronaut.convert("L"))
    default_box = detect_faces(gray)[0]
    other_box = detect_faces(gray, cascade="haarcascade_frontalface_alt2.xml")[0]
    assert abs(other_box.x - default_box.x) < 20 and abs(other_box.y - default_box.y) < 20
    with pytest.raises(DataError, match="no-such-cascade.xml: no such Haar cascade"):
        detect_faces(gray, cascade="no-such-cascade.xml")


def test_huge_photo_is_downscaled_and_boxes_stay_in_its_coordinates(astronaut) -> None:
    huge = astronaut.resize((4096, 4096))
    boxes = detect_faces(np.asarray(huge.convert("L")))
    assert len(boxes) == 1
    assert abs(boxes[0].x + boxes[0].width / 2 - 8 * ASTRONAUT_FACE_CENTRE[0]) < 160


def test_crop_face_pads_outside_the_photo() -> None:
    gray = np.full((100, 100), 7, dtype=np.uint8)
    from ganpso.inference.faces import Box

    crop = crop_face(gray, Box(80, 80, 40, 40), margin=0.5)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert (crop == 7).all()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "CMYK", "P"])
def test_any_colour_mode_finds_the_face(predictor, astronaut, mode) -> None:
    image = astronaut.convert(mode)
    result = predictor.predict_image(encode(image, "JPEG" if mode == "CMYK" else "PNG"), mode)
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.emotion in EMOTIONS
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_no_face_says_so_and_no_detect_uses_whole_image(predictor) -> None:
    blank = encode(Image.new("L", (200, 200), 128))
    assert predictor.predict_image(blank, "blank.png").message == "no face found"
    result = predictor.predict_image(blank, "blank.png", detect=False)
    assert len(result.faces) == 1 and result.faces[0].box is None


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"hello, not an image", "not a readable image")],
)
def test_bad_bytes_are_one_line_errors(content, message) -> None:
    with pytest.raises(DataError, match=f"^bad.jpg: {message}"):
        read_photo(content, "bad.jpg")


def test_decompression_bomb_is_refused_by_name(astronaut, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # the astronaut has 262,144 pixels
    with pytest.raises(DataError, match="^bomb.png: image too large to decode safely"):
        read_photo(encode(astronaut), "bomb.png")


def test_truncated_jpeg_is_refused(astronaut) -> None:
    data = encode(astronaut, "JPEG")
    with pytest.raises(DataError, match="not a readable image"):
        read_photo(data[: len(data) // 2], "cut.jpg")


def test_batch_with_bad_files_finishes_the_good_ones(predictor, astronaut, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a_good.png").write_bytes(encode(astronaut))
    (folder / "b_empty.jpg").write_bytes(b"")
    (folder / "c_text.png").write_text("not an image")
    (folder / "notes.txt").write_text("ignored: not an image name")
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("inner/face.jpg", encode(astronaut.convert("RGB"), "JPEG"))
    inputs = [folder, archive, tmp_path / "missing.jpg"]
    results = list(predictor.predict_files(inputs))
    names = ["a_good.png", "b_empty.jpg", "c_text.png", "more.zip:inner/face.jpg", "missing.jpg"]
    assert [r.source.endswith(name) for r, name in zip(results, names, strict=True)] == [True] * 5
    assert [len(r.faces) for r in results] == [1, 0, 0, 1, 0]
    assert [r.error is not None for r in results] == [False, True, True, False, True]
    assert "no such file" in results[-1].error


def test_batched_and_single_predictions_agree(tiny_checkpoint, astronaut, tmp_path) -> None:
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(encode(astronaut.rotate(i * 2)))
    small = EmotionPredictor.from_pretrained(tiny_checkpoint, batch_size=1)
    large = EmotionPredictor.from_pretrained(tiny_checkpoint, batch_size=256)
    for a, b in zip(small.predict_files([tmp_path]), large.predict_files([tmp_path]), strict=True):
        np.testing.assert_allclose(
            list(a.faces[0].probabilities.values()), list(b.faces[0].probabilities.values()), 1e-5
        )


def test_tampered_checkpoint_is_refused(tiny_checkpoint, tmp_path) -> None:
    data = bytearray(tiny_checkpoint.read_bytes())
    data[20:40] = b"#" * 20
    tampered = tmp_path / "tampered.safetensors"
    tampered.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="tampered.safetensors"):
        EmotionPredictor.from_pretrained(tampered)


class Payload:
    """Unpickling this would create ``marker``: loading must never unpickle."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_disguised_as_checkpoint_executes_nothing(tmp_path) -> None:
    payload = Payload()
    payload.marker = tmp_path / "executed"
    disguised = tmp_path / "evil.safetensors"
    disguised.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="evil.safetensors"):
        EmotionPredictor.from_pretrained(disguised)
    assert not payload.marker.exists()


def test_onnx_export_matches_pytorch(tiny_checkpoint, tmp_path, astronaut) -> None:
    from ganpso.inference.export import export_onnx

    out = tmp_path / "model.onnx"
    report = export_onnx(tiny_checkpoint, out)
    assert report["max_abs_diff"] <= 1e-4 and out.is_file()
    torch_predictor = EmotionPredictor.from_pretrained(tiny_checkpoint, tta=True)
    onnx_predictor = EmotionPredictor.from_pretrained(out, tta=True)
    assert onnx_predictor.engine.name == "onnx" and onnx_predictor.classes == EMOTIONS
    photo = encode(astronaut)
    a = torch_predictor.predict_image(photo).faces[0].probabilities
    b = onnx_predictor.predict_image(photo).faces[0].probabilities
    np.testing.assert_allclose(list(a.values()), list(b.values()), atol=1e-4)


@pytest.mark.parametrize("name", ["vgg_small", "vgg_se", "resnet_small"])
def test_folded_batch_norm_computes_the_same_logits(name) -> None:
    from ganpso.classifier.config import ModelConfig
    from ganpso.classifier.fusion import fold_batch_norm
    from ganpso.classifier.models import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, width=4))
    crops = torch.randn(16, 1, 40, 40)
    model.train()
    for _ in range(3):  # running statistics away from their initial 0 and 1
        model(crops * 3 + 1)
    model.eval()
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(crops), model(crops), atol=1e-5, rtol=1e-4)


def test_int8_export_keeps_the_header_and_nearly_the_probabilities(
    tiny_checkpoint, tmp_path, monkeypatch
) -> None:
    from factories import tiny_dataset
    from ganpso.inference import quantize
    from ganpso.inference.export import export_onnx

    monkeypatch.setattr(quantize, "MAX_ACCURACY_LOSS", 1.0)  # an untrained model: chance level
    data = tiny_dataset()
    export_onnx(tiny_checkpoint, tmp_path / "fp32.onnx")
    check = (data["PublicTest"].images, data["PublicTest"].labels)
    report = quantize.quantize_export(
        tmp_path / "fp32.onnx", tmp_path / "int8.onnx", data["Training"].images, check
    )
    assert report["faces_checked"] == len(check[0]) and 0 <= report["int8_accuracy"] <= 1
    int8 = EmotionPredictor.from_pretrained(tmp_path / "int8.onnx")
    fp32 = EmotionPredictor.from_pretrained(tmp_path / "fp32.onnx")
    assert int8.classes == EMOTIONS and int8.preprocessing == fp32.preprocessing
    np.testing.assert_allclose(
        int8.predict_faces(check[0]), fp32.predict_faces(check[0]), atol=0.05
    )


def test_int8_export_losing_accuracy_is_refused_and_not_written(
    tiny_checkpoint, tmp_path, monkeypatch
) -> None:
    from factories import tiny_dataset
    from ganpso.errors import ConfigError
    from ganpso.inference import quantize
    from ganpso.inference.export import export_onnx

    monkeypatch.setattr(quantize, "MAX_ACCURACY_LOSS", -1.0)  # any int8 model "loses"
    data = tiny_dataset()
    export_onnx(tiny_checkpoint, tmp_path / "fp32.onnx")
    check = (data["PublicTest"].images, data["PublicTest"].labels)
    with pytest.raises(ConfigError, match="not written"):
        quantize.quantize_export(
            tmp_path / "fp32.onnx", tmp_path / "int8.onnx", data["Training"].images, check
        )
    assert not (tmp_path / "int8.onnx").exists()


def test_detection_searches_from_an_eighth_of_the_photo_unless_told() -> None:
    from ganpso.inference.faces import detection_scale

    assert detection_scale((512, 512), None) == pytest.approx(24 / 64)
    assert detection_scale((512, 512), 24) == 1.0  # as small as the cascade's window
    assert detection_scale((100, 120), None) == 1.0  # small photos are never enlarged
    assert detection_scale((4096, 4096), 24) == pytest.approx(800 / 4096)  # the side cap


def test_corrupt_onnx_is_refused(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(CheckpointError, match="bad.onnx"):
        EmotionPredictor.from_pretrained(bad)


def test_cli_predict_json_csv_and_exit_code(tiny_checkpoint, astronaut, tmp_path, capsys) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(encode(astronaut))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    assert main(["predict", str(good), "--model", str(tiny_checkpoint), "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["source"] == str(good) and len(line["faces"]) == 1
    code = main(["predict", str(good), str(bad), "--model", str(tiny_checkpoint), "--csv"])
    captured = capsys.readouterr()
    rows = captured.out.strip().splitlines()
    assert code == 2 and rows[0].startswith("source,face,x,y,width,height,emotion,angry")
    assert len(rows) == 3 and rows[1].startswith(str(good))
    assert rows[2].startswith(str(bad)) and rows[2].endswith("empty file (0 bytes)")  # a reason
    assert f"error: {bad}: empty file (0 bytes)" in captured.err


def test_cli_predict_accounts_for_every_input(tiny_checkpoint, tmp_path, capsys) -> None:
    model = ["--model", str(tiny_checkpoint)]
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), *model]) == 2
    assert "empty: no images in this folder" in capsys.readouterr().err
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(encode(Image.new("L", (1, 1), 128)))
    assert main(["predict", str(tiny), "--no-detect", *model]) == 2
    assert "tiny.png: image is 1x1 pixels" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode(Image.new("L", (300, 200), 128)))
    assert main(["predict", str(blank), "--csv", *model]) == 1  # read, but no face in it
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[1].endswith("no face found")
    assert "1 image(s) with no face found" in captured.err
    crop = tmp_path / "crop.png"  # face-sized: taken whole when nothing is detected
    crop.write_bytes(encode(Image.new("L", (90, 100), 128)))
    assert main(["predict", str(crop), "--csv", *model]) == 0
    row = capsys.readouterr().out.strip().splitlines()[1].split(",")
    assert row[1:6] == ["0", "0", "5", "90", "90"] and row[6] in EMOTIONS


def test_bundled_model_loads_and_has_a_model_card() -> None:
    path = default_model_path()
    assert path.is_file() and path.stat().st_size <= 10 * 1024 * 1024
    assert (path.parent / "MODEL_CARD.md").is_file()
    predictor = EmotionPredictor.from_pretrained()
    assert predictor.classes == EMOTIONS
    probs = predictor.predict_faces(np.full((2, 48, 48), 120, dtype=np.uint8))
    assert probs.shape == (2, 7)
