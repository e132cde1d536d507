"""End-to-end on the real FER2013 archive in ../shared (skipped where it is absent)."""

import json
from pathlib import Path

import pytest

from ganpso.cli import main

ARCHIVE = Path(__file__).parents[1] / ".." / "shared" / "data" / "fer2013.zip"
SMOKE = Path(__file__).parents[1] / "configs" / "smoke.yaml"

pytestmark = pytest.mark.skipif(not ARCHIVE.exists(), reason="../shared/data/fer2013.zip absent")


def test_smoke_config_trains_and_evaluates_on_fer2013(tmp_path) -> None:
    run = tmp_path / "smoke"
    args = ["train", "--config", str(SMOKE), "--data", str(ARCHIVE), "--out", str(run)]
    assert main([*args, "--set", f"data.cache_dir={tmp_path / 'cache'}", "--device", "cpu"]) == 0
    report = json.loads((run / "metrics-PublicTest.json").read_text())
    assert report["n"] == 7 * 60 and report["classes"][1] == "disgust"
    assert list(report["per_class"]) == report["classes"]
