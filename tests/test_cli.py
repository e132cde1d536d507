import json

import pytest

from factories import write_kaggle_zip
from ganpso.cli import main

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
    assert json.loads((run / "run.json").read_text())["device"].startswith("cpu")

    assert main(["evaluate", str(run), "--split", "PrivateTest", "--device", "cpu"]) == 0
    private = json.loads((run / "metrics-PrivateTest.json").read_text())
    assert private["split"] == "PrivateTest" and private["n"] == 21
    assert "macro" in capsys.readouterr().out.lower()

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
    assert "model:" in capsys.readouterr().out
    assert not run.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "nowhere.zip"], "nowhere.zip: dataset not found"),
        (["train", "--set", "epochz=1"], "unknown key(s) ['epochz']"),
        (["train", "--config", "missing.yaml"], "missing.yaml: config file not found"),
        (["evaluate", "nothing.safetensors"], "nothing.safetensors: checkpoint not found"),
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
