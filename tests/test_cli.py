import json

import numpy as np
import pytest

from factories import write_kaggle_zip
from ganpso.cli import main
from ganpso.pipeline.folders import read_predictions

TINY = [
    "--set",
    "model.width=4",
    "--set",
    "epochs=1",
    "--set",
    "batch_size=16",
    "--set",
    "precision=fp32",
    "--set",
    "data.cache_dir=null",
    "--device",
    "cpu",
]


@pytest.fixture
def kaggle_zip(tmp_path):
    return write_kaggle_zip(tmp_path / "fer.zip", per_class=3)


def test_train_then_evaluate_both_splits(tmp_path, kaggle_zip, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", str(kaggle_zip), "--out", str(run), *TINY]) == 0
    public = json.loads((run / "metrics-PublicTest.json").read_text())
    assert public["split"] == "PublicTest" and public["n"] == 21
    assert public["command"].startswith("ganpso train")
    assert (run / "confusion-PublicTest.png").stat().st_size > 0
    record = json.loads((run / "run.json").read_text())
    assert record["device"].startswith("cpu") and record["precision"] == "fp32"

    assert main(["evaluate", str(run), "--split", "PrivateTest", "--device", "cpu"]) == 0
    private = json.loads((run / "metrics-PrivateTest.json").read_text())
    assert private["split"] == "PrivateTest" and private["n"] == 21
    assert "macro" in capsys.readouterr().out.lower()
    # the per-image predictions a paired test reads, in the comparison's own format
    y_true, y_pred = read_predictions(run)
    assert len(y_true) == 21 and np.mean(y_true == y_pred) == pytest.approx(private["accuracy"])
    with np.load(run / "predictions-PrivateTest.npz") as saved:
        assert saved["probs"].shape == (21, 7) and np.array_equal(saved["probs"].argmax(1), y_pred)

    # PrivateTest is touched once: a second look is refused unless forced
    assert main(["evaluate", str(run), "--split", "PrivateTest", "--device", "cpu"]) == 2
    assert "already evaluated" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--split", "PrivateTest", "--force", "--device", "cpu"]) == 0


def test_resume_continues_a_run(tmp_path, kaggle_zip) -> None:
    run = tmp_path / "run"
    args = ["train", "--data", str(kaggle_zip), "--out", str(run), *TINY]
    assert main(args) == 0
    assert main(args) == 2  # the folder holds a run: no silent overwrite
    assert main(["train", "--out", str(run), "--resume"]) == 0


def test_dry_run_prints_config_and_computes_nothing(tmp_path, kaggle_zip, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", str(kaggle_zip), "--out", str(run), "--dry-run", *TINY]) == 0
    out = capsys.readouterr().out
    assert "model:" in out and "Training" in out  # the data was read: its class counts
    assert not run.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "nowhere.zip"], "nowhere.zip: no such file or directory"),
        (["train", "--set", "epochs=0"], "config.epochs: 0 is out of range; expected >= 1"),
        (["train", "--set", "lr=-1"], "config.lr: -1.0 is out of range; expected > 0"),
        (["train", "--set", "model.width=0"], "config.model.width: 0 is out of range"),
        (["train", "--set", "model.dropout=2"], "config.model.dropout: 2.0 is out of range"),
        (["train", "--set", "batch_size=0"], "config.batch_size: 0 is out of range"),
        (["train", "--set", "data.limit_per_class=-5"], "config.data.limit_per_class: -5 is out"),
        (["train", "--set", "epochz=1"], "unknown key(s) ['epochz']"),
        (["train", "--config", "missing.yaml"], "missing.yaml: config file not found"),
        (["evaluate", "nothing.safetensors"], "nothing.safetensors: model file not found"),
        (["train", "--out", "no-run", "--resume"], "no run to resume"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_corrupt_image_in_dataset_is_one_line(tmp_path, kaggle_zip, capsys) -> None:
    import zipfile

    with zipfile.ZipFile(kaggle_zip, "a") as archive:
        archive.writestr("train/angry/Training_broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["train", "--data", str(kaggle_zip), "--out", str(tmp_path / "r"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "Training_broken.jpg" in err and err.count("\n") == 1


def all_parsers(parser=None, path="ganpso"):
    """Every (command path, parser) of the CLI, sub-commands of sub-commands included."""
    import argparse

    from ganpso.cli import build_parser

    parser = parser or build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_parsers(sub, f"{path} {name}")


def test_every_option_has_help_and_no_doubled_percent() -> None:
    for path, parser in all_parsers():
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{path} {action.option_strings[0]}: no help text"
        text = parser.format_help()
        assert "%%" not in text, f"{path} --help shows %%"


def own_folders(root):
    """A user's labelled crops with foreign names: anger/, sadness/, contempt/ (no neutral)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder in ("anger", "sadness", "contempt"):
        (root / folder).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 255, (48, 48), dtype="uint8")
            Image.fromarray(pixels).save(root / folder / f"{i}.png")
    return root


def test_evaluate_own_folder_whole_with_map_and_ignore(tmp_path, kaggle_zip, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", str(kaggle_zip), "--out", str(run), *TINY]) == 0
    folder = own_folders(tmp_path / "mine")
    capsys.readouterr()
    base = ["evaluate", str(run), "--data", str(folder), "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 2  # contempt: not mapped, not ignored
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "['contempt']" in err[0] and "'neutral'" in err[0]  # model's classes

    assert main([*base, "--ignore", "contempt", "--out", str(tmp_path / "b")]) == 0
    report = json.loads((tmp_path / "b" / "metrics-all.json").read_text())
    assert report["n"] == 12 and report["macro_classes"] == ["angry", "sad"]  # scored whole
    assert "taken whole" in report["faces"] and "no official split" in report["split_note"]
    assert "macro measures over 2 classes present" in capsys.readouterr().out

    assert main([*base, "--map", "contempt=disgust", "--out", str(tmp_path / "c")]) == 0
    report = json.loads((tmp_path / "c" / "metrics-all.json").read_text())
    assert report["n"] == 18 and report["macro_classes"] == ["angry", "disgust", "sad"]

    part_args = ["--ignore", "contempt", "--split", "PublicTest", "--out", str(tmp_path)]
    assert main([*base, *part_args]) == 0
    part = json.loads((tmp_path / "metrics-PublicTest.json").read_text())
    assert part["n"] < 12 and "seeded stratified split" in part["split_note"]
    assert main([*base, "--map", "contempt", "--out", str(tmp_path / "d")]) == 2
    assert "expected NAME=EMOTION" in capsys.readouterr().err


def test_fine_tune_on_own_folder_reports_before_and_after(tmp_path, kaggle_zip, capsys) -> None:
    start = tmp_path / "start"
    assert main(["train", "--data", str(kaggle_zip), "--out", str(start), *TINY]) == 0
    folder = own_folders(tmp_path / "mine")
    run = tmp_path / "tuned"
    args = ["train", "--data", str(folder), "--init", str(start / "best.safetensors")]
    tiny = ["--set", "batch_size=8", "--set", "precision=fp32", "--set", "data.cache_dir=null"]
    extra = ["--set", "data.ignore_classes=[contempt]", "--device", "cpu", "--out", str(run)]
    assert main([*args, *tiny, *extra]) == 0
    config = (run / "config.yaml").read_text()
    assert "epochs: 10" in config and "init: " in config and "width: 4" in config  # its model
    report = json.loads((run / "finetune.json").read_text())
    assert report["held_out"] == "PrivateTest"  # the seeded test part of their own folder
    assert report["before"]["n"] == report["after"]["n"] > 0
    assert "held-out PrivateTest" in capsys.readouterr().out
    clash = [*args, "--set", "model.width=8", "--out", str(tmp_path / "x"), "--dry-run"]
    assert main(clash) == 2 and "its model is" in capsys.readouterr().err
