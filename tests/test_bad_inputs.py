"""Bad inputs at the door: every one ends with exit code 2 (or the documented code), one line on
stderr and no traceback, before any compute; a fuzz test over config values, checkpoint bytes
and image bytes finds no other exception than the project's one-line errors."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from factories import write_kaggle_zip
from ganpso.classifier import Preprocessing, build_model, load_classifier, save_classifier
from ganpso.classifier.config import ModelConfig, TrainConfig
from ganpso.cli import main
from ganpso.config import validate
from ganpso.emotions import EMOTIONS
from ganpso.errors import CheckpointError, ConfigError, DataError
from ganpso.inference.faces import read_photo


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """The files the bad inputs point at: a good tiny dataset and model, and broken ones."""
    root = tmp_path_factory.mktemp("corpus")
    files = {"zip": write_kaggle_zip(root / "fer.zip", per_class=2)}
    config = ModelConfig(name="vgg_small", width=4, dropout=0.0)
    torch.manual_seed(0)
    files["model"] = root / "tiny.safetensors"
    save_classifier(files["model"], build_model(config).eval(), config, EMOTIONS, Preprocessing())
    files["crop.safetensors"] = root / "crop.safetensors"  # a header whose crop exceeds the face
    save_classifier(
        files["crop.safetensors"], build_model(config), config, EMOTIONS, Preprocessing(crop=100)
    )
    data = files["model"].read_bytes()
    writes = {
        "random.safetensors": np.random.default_rng(0).bytes(4096),
        "truncated.safetensors": data[: len(data) // 2],
        "empty.safetensors": b"",
        "header-only.safetensors": data[:64],
        "pickle.safetensors": pickle.dumps({"model": 1}),
        "not-a-zip.zip": b"PK\x03\x04 but not really",
        "bad.csv": b"emotion,pixels,Usage\n0,1 2 x,Training\n",
        "columns.csv": b"emotion,image,Usage\n0,1,Training\n",
        "empty.csv": b"",
        "text.png": b"this is not an image",
        "truncated.png": _png(64, noise=True)[:1000],
        "tiny.png": _png(1),
        "list.yaml": b"- 1\n- 2\n",
        "broken.yaml": b"epochs: [1, 2\n",
        "unknown.yaml": b"epochz: 3\n",
        "cycle.yaml": b"base: cycle.yaml\n",
    }
    for name, content in writes.items():
        (root / name).write_bytes(content)
        files[name] = root / name
    files["out"] = root / "out-never-written"
    _wide_generator(root, files)
    (root / "empty-folder").mkdir()
    files["empty-folder"] = root / "empty-folder"
    (root / "state-run").mkdir()
    (root / "state-run" / "state.pt").write_bytes(b"garbage")
    files["state-run"] = root / "state-run"
    (root / "keys-run").mkdir()
    torch.save({"weights": torch.zeros(1)}, root / "keys-run" / "state.pt")
    files["keys-run"] = root / "keys-run"
    return files


def _wide_generator(root: Path, files: dict[str, Path]) -> None:
    """A GAN run whose state file is refused, and a generator whose header asks for width 4096."""
    from ganpso.gan.checkpoint import write_generator
    from ganpso.gan.networks import Generator

    header = {"z_dim": 8, "width": 4096, "classes": list(EMOTIONS), "step": 0}
    write_generator(root / "g-wide.safetensors", Generator(8, 2, len(EMOTIONS)), header)
    files["g-wide.safetensors"] = root / "g-wide.safetensors"
    run = root / "gan-run"
    run.mkdir()
    (run / "gan-state.pt").write_bytes(pickle.dumps({"step": 1}))
    files["gan-run"] = run


def _png(side: int, noise: bool = False) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels if noise else np.full_like(pixels, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


# (arguments, @name for a file of the corpus, expected exit code, text the one line must contain)
TRAIN = ["train", "--data", "@zip", "--dry-run", "--device", "cpu"]
CASES = [
    ([*TRAIN, "--set", "epochs=0"], "config.epochs: 0 is out of range; expected >= 1"),
    ([*TRAIN, "--set", "epochs=-3"], "config.epochs: -3 is out of range"),
    ([*TRAIN, "--set", "lr=-1"], "config.lr: -1.0 is out of range; expected > 0"),
    ([*TRAIN, "--set", "lr=0"], "config.lr: 0.0 is out of range"),
    ([*TRAIN, "--set", "lr=.nan"], "config.lr: nan is out of range"),
    ([*TRAIN, "--set", "batch_size=0"], "config.batch_size: 0 is out of range"),
    ([*TRAIN, "--set", "eval_batch_size=-1"], "config.eval_batch_size: -1 is out of range"),
    ([*TRAIN, "--set", "model.width=0"], "config.model.width: 0 is out of range"),
    ([*TRAIN, "--set", "model.width=4096"], "config.model.width: 4096 is out of range"),
    ([*TRAIN, "--set", "model.dropout=2"], "config.model.dropout: 2.0 is out of range"),
    ([*TRAIN, "--set", "model.dropout=-0.1"], "config.model.dropout: -0.1 is out of range"),
    ([*TRAIN, "--set", "model.name=nope"], "nope"),
    ([*TRAIN, "--set", "momentum=1"], "config.momentum: 1.0 is out of range"),
    ([*TRAIN, "--set", "warmup_fraction=0"], "config.warmup_fraction: 0.0 is out of range"),
    ([*TRAIN, "--set", "label_smoothing=1"], "config.label_smoothing: 1.0 is out of range"),
    ([*TRAIN, "--set", "weight_decay=-1"], "config.weight_decay: -1.0 is out of range"),
    ([*TRAIN, "--set", "augment.crop=4"], "config.augment.crop: 4 is out of range"),
    ([*TRAIN, "--set", "augment.crop=100"], "config.augment.crop: 100 is out of range"),
    ([*TRAIN, "--set", "augment.erase_prob=2"], "config.augment.erase_prob: 2.0 is out"),
    ([*TRAIN, "--set", "data.limit_per_class=-5"], "config.data.limit_per_class: -5 is out"),
    ([*TRAIN, "--set", "data.limit_per_class=0"], "config.data.limit_per_class: 0 is out"),
    ([*TRAIN, "--set", "data.val_fraction=0.6", "--set", "data.test_fraction=0.6"], "below 1"),
    ([*TRAIN, "--set", "seed=-1"], "config.seed: -1 is out of range"),
    ([*TRAIN, "--set", "num_threads=0"], "config.num_threads: 0 is out of range"),
    ([*TRAIN, "--set", "early_stopping_patience=0"], "early_stopping_patience: 0 is out"),
    ([*TRAIN, "--set", "synthetic.ratio=-1"], "config.synthetic.ratio: -1.0 is out of range"),
    ([*TRAIN, "--set", "synthetic.weight=0"], "config.synthetic.weight: 0.0 is out of range"),
    ([*TRAIN, "--set", "synthetic.class_ratios={contempt: 1}"], "unknown classes ['contempt']"),
    ([*TRAIN, "--set", "synthetic.class_ratios={fear: -1}"], "class_ratios.fear: -1 is out"),
    ([*TRAIN, "--set", "epochz=1"], "unknown key(s) ['epochz']"),
    ([*TRAIN, "--set", "epochs=ten"], "config.epochs: expected int"),
    ([*TRAIN, "--set", "precision=fp16"], "'fp16' is not one of"),
    ([*TRAIN, "--set", "epochs"], "expected KEY=VALUE"),
    (["train", "--config", "@list.yaml", "--dry-run"], "a config must be a mapping"),
    (["train", "--config", "@broken.yaml", "--dry-run"], "cannot read config"),
    (["train", "--config", "@unknown.yaml", "--dry-run"], "unknown key(s) ['epochz']"),
    (["train", "--config", "@cycle.yaml", "--dry-run"], "leads back to itself"),
    (["train", "--config", "nowhere.yaml", "--dry-run"], "nowhere.yaml: config file not found"),
    (["train", "--data", "nowhere.zip", "--dry-run"], "nowhere.zip: no such file or directory"),
    (["train", "--data", "@not-a-zip.zip", "--dry-run"], "not-a-zip.zip"),
    (["train", "--data", "@bad.csv", "--dry-run"], "bad.csv"),
    (["train", "--data", "@columns.csv", "--dry-run"], "expected columns emotion,pixels"),
    (["train", "--data", "@empty.csv", "--dry-run"], "empty.csv"),
    (["train", "--data", "@empty-folder", "--dry-run"], "empty-folder"),
    (["train", "--data", "@zip", "--out", "@state-run", "--resume"], "config.yaml missing"),
    (["evaluate", "@random.safetensors", "--data", "@zip"], "not a ganpso safetensors"),
    (["evaluate", "@truncated.safetensors", "--data", "@zip"], "truncated.safetensors"),
    (["evaluate", "@empty.safetensors", "--data", "@zip"], "empty.safetensors"),
    (["evaluate", "@header-only.safetensors", "--data", "@zip"], "header-only.safetensors"),
    (["evaluate", "@pickle.safetensors", "--data", "@zip"], "not a ganpso safetensors"),
    (["evaluate", "nothing.safetensors"], "nothing.safetensors: model file not found"),
    (["predict", "@tiny.png", "--model", "@crop.safetensors"], "crop: 100 is larger than"),
    (["predict", "@empty-folder", "--model", "@model"], "no images in this folder"),
    (["predict", "@tiny.png", "--no-detect", "--model", "@model"], "image is 1x1 pixels"),
    (["predict", "@text.png", "--model", "@model"], "text.png"),
    (["predict", "@truncated.png", "--model", "@model"], "truncated.png"),
    (["predict", "missing.png", "--model", "@model"], "missing.png: no such file"),
    (["predict", "@text.png", "--model", "@random.safetensors"], "not a ganpso safetensors"),
    (["predict", "@tiny.png", "--batch-size", "0", "--model", "@model"], "--batch-size 0"),
    (["predict", "@tiny.png", "--min-face", "0", "--model", "@model"], "--min-face 0"),
    (["export", "--onnx", "--int8", "--out", "@out"], "--int8 needs --calibration-data"),
    (["gan", "train", "--data", "@zip", "--set", "steps=-5", "--out", "@out"], "steps: -5 is out"),
    (["gan", "train", "--data", "@zip", "--set", "g_width=4096", "--out", "@out"], "g_width"),
    (["gan", "train", "--data", "@zip", "--set", "lr_d=0", "--out", "@out"], "lr_d: 0.0 is out"),
    (["gan", "train", "--data", "@zip", "--set", "augment_p=2", "--out", "@out"], "augment_p"),
    (["gan", "train", "--data", "@zip", "--set", "lecam_weight=1", "--out", "@out"], "lecam"),
    (["gan", "sample", "@g-wide.safetensors", "--class", "fear", "--out", "@out"], "g_width"),
    (["gan", "sample", "@model", "--class", "fear", "--out", "@out"], "a ganpso-generator"),
    (["gan", "train", "--data", "@zip", "--out", "@gan-run", "--resume"], "no GAN run to resume"),
    (["run", "--profile", "smoke", "--set", "classifier.seed=5", "--out", "@out"], "differs"),
    (["run", "--profile", "smoke", "--set", "gan.steps=-5", "--out", "@out"], "gan.steps: -5"),
    (["run", "--profile", "smoke", "--set", "search.pso.swarm_size=3", "--out", "@out"], "pso"),
    (["run", "--profile", "smoke", "--set", "search.iterations=0", "--out", "@out"], "iterations"),
    (["run", "--profile", "smoke", "--set", "search.pso.topology=star", "--out", "@out"], "star"),
]


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_and_exit_2(corpus, capsys, args, expected) -> None:
    argv = [str(corpus[arg[1:]]) if arg.startswith("@") else arg for arg in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], err
    assert not any("Traceback" in line for line in err)


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("run", ["state-run", "keys-run"])
def test_a_broken_state_file_is_a_one_line_refusal(corpus, tmp_path, capsys, run) -> None:
    from ganpso.classifier.training import load_state

    with pytest.raises(CheckpointError) as info:
        load_state(corpus[run] / "state.pt")
    assert "\n" not in str(info.value) and "weights_only=False" not in str(info.value)


BOUNDED_VALUES = st.one_of(
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
)
KEYS = ["epochs", "lr", "batch_size", "momentum", "label_smoothing", "warmup_fraction",
        "model.width", "model.dropout", "augment.crop", "data.limit_per_class"]  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(KEYS), value=BOUNDED_VALUES)
def test_fuzzed_config_values_load_or_fail_in_one_line(key: str, value) -> None:
    *parents, leaf = key.split(".")
    raw: dict = {}
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    try:
        config = TrainConfig.from_dict(raw)
    except ConfigError as exc:
        assert "\n" not in str(exc) and key.split(".")[-1] in str(exc)
        return
    validate(config)  # what loaded is inside every range


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_checkpoints_fail_in_one_line(corpus, tmp_path_factory, data) -> None:
    original = corpus["model"].read_bytes()
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        # mutate the header (where the description lives) more often than the weights
        limit = data.draw(st.sampled_from([min(600, len(mutated)), len(mutated)]))
        mutated[data.draw(st.integers(0, limit - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    blob = bytes(mutated[:cut] if data.draw(st.booleans()) else mutated)
    path = tmp_path_factory.mktemp("fuzz") / "mutated.safetensors"
    path.write_bytes(blob)
    try:
        load_classifier(path)
    except CheckpointError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(blob=st.binary(max_size=2048), cut=st.integers(0, 2048))
def test_mutated_images_fail_in_one_line(blob: bytes, cut: int) -> None:
    good = _png(24)
    for data in (blob, good[:cut], good[:cut] + blob):
        try:
            gray = read_photo(data, "upload")
        except DataError as exc:
            assert "\n" not in str(exc)
        else:
            assert gray.ndim == 2 and min(gray.shape) >= 16


class Payload:
    """Unpickling this would run code: it must be refused, never executed."""

    def __reduce__(self):
        return (Path("/tmp/ganpso-pickle-ran").touch, ())


@pytest.mark.parametrize("what", ["classifier state file", "GAN state file"])
def test_code_carrying_state_files_are_refused_in_one_line(tmp_path, what) -> None:
    from ganpso.checkpoint import load_state_file

    marker = Path("/tmp/ganpso-pickle-ran")
    marker.unlink(missing_ok=True)
    path = tmp_path / "state.pt"
    torch.save({"step": Payload()}, path)
    with pytest.raises(CheckpointError) as info:
        load_state_file(path, ("step",), what)
    message = str(info.value)
    assert "\n" not in message and "never unpickled" in message and what in message
    assert "weights_only" not in message and not marker.exists()
