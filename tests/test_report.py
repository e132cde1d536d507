import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganpso.classifier.evaluation import write_predictions
from ganpso.emotions import EMOTIONS
from ganpso.metrics import build_metrics_report, write_json
from ganpso.pipeline.folders import PRIVATE_METRICS_FILE, write_cell_record
from ganpso.report import write_report

METHODS = {"cnn": 0.5, "ganpso": 0.7, "hog-svm": 0.3, "oversample": 0.6}


def tiny_png(path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (14, 14), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def report_json(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    return build_metrics_report(
        y_true, y_pred, split="PrivateTest", device="cpu: test", seconds=2.0, command="c", n_boot=20
    )


def write_compare(run_dir) -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, len(EMOTIONS), 300)
    for method, skill in METHODS.items():
        for seed in range(3):
            y_pred = np.where(rng.random(300) < skill, y_true, rng.integers(0, 7, 300))
            folder = run_dir / "compare" / method / f"seed{seed}"
            write_json(report_json(y_true, y_pred), folder / PRIVATE_METRICS_FILE)
            write_predictions(folder, y_true, y_pred)
            record = {"device": "cpu: test", "wall_seconds": 60.0, "title": method.upper()}
            write_cell_record(folder, record)


def write_stages(run_dir) -> None:
    gan_metrics = {
        "fid_kid": {"per_class": {"disgust": {"fid": 9.5, "kid": 0.07}}, "overall": {"fid": 1.9}},
        "cas": {"accuracy": 0.47, "accuracy_std": 0.01, "seeds": 3},
        "disgust_vs_other_classes": {"fid_ratio": 2.3, "kid_ratio": 1.9},
        "memorisation": {"near_copy_fraction": 0.0},
        "targets_met": {
            "cas_accuracy_at_least_0.45": True,
            "disgust_kid_within_2x_of_other_classes_mean": True,
            "disgust_fid_within_2x_of_other_classes_mean": False,
            "near_copy_fraction_at_most_0.01": True,
        },
        "summary": "FID 1.9",
        "device": "cpu: gan",
        "seconds": 173.3,
    }
    write_json(gan_metrics, run_dir / "gan" / "gan-metrics.json")
    tiny_png(run_dir / "gan" / "samples.png", seed=1)
    history = [{"iteration": i, "best": 0.5 + 0.01 * i, "mean": 0.4} for i in range(4)]
    write_json(
        {"iterations": history, "device": "cpu: pso", "seconds": 99},
        run_dir / "search" / "history.json",
    )
    tiny_png(run_dir / "search" / "convergence.png", seed=2)
    y = np.arange(70) % 7
    write_json(report_json(y, y), run_dir / "final" / "metrics-PrivateTest.json")


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    write_compare(run_dir)
    write_stages(run_dir)
    md_path, html_path = write_report(run_dir)
    return md_path.read_text(), html_path.read_text(), md_path.parent


def test_report_builds_both_files(full_report) -> None:
    markdown, page, out_dir = full_report
    assert out_dir.name == "report"
    assert (out_dir / "report.md").exists() and (out_dir / "report.html").exists()
    assert "not run" not in markdown.replace("quoted, not run", "")
    for title in re.findall(r"^## (.+)$", markdown, flags=re.M):
        assert title.split("(")[0].strip() in page


def test_comparison_rows_and_paired_test(full_report) -> None:
    markdown, _, _ = full_report
    for method in METHODS:
        assert f"| {method} | 3 |" in markdown
    assert "| ganpso | cnn |" in markdown  # the paired test's row
    assert "cpu: test" in markdown


def test_html_is_self_contained_and_embeds_images(full_report) -> None:
    markdown, page, out_dir = full_report
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", page, flags=re.I)
    assert "<link" not in page and "<script" not in page
    images = re.findall(r'<img src="([^"]+)"', page)
    # per-class bars, one confusion matrix per method, GAN grid, PSO convergence
    assert len(images) == 1 + len(METHODS) + 2
    assert all(src.startswith("data:image/png;base64,") for src in images)
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (out_dir / link).exists()


def test_every_figure_names_device_and_wall_time(full_report) -> None:
    markdown, _, _ = full_report
    captions = re.findall(r"^\*(.+)\*$", markdown, flags=re.M)
    assert len(captions) == 1 + len(METHODS) + 2
    assert all("device" in c.lower() and " s" in c for c in captions)
    assert "cpu: gan" in markdown and "173 s" in markdown and "cpu: pso" in markdown


def test_published_anchors_are_marked_quoted(full_report) -> None:
    markdown, page, _ = full_report
    assert "quoted, not run" in markdown and "74.14 %" in markdown and "73.28 %" in page


def test_missing_inputs_say_not_run(tmp_path) -> None:
    md_path, html_path = write_report(tmp_path / "empty-run", tmp_path / "out")
    markdown, page = md_path.read_text(), html_path.read_text()
    assert markdown.count("*not run*:") == 7  # every section but the quoted anchors
    assert page.count("<em>not run</em>:") == 7
    assert "<img" not in page


def test_partial_run_reports_what_is_missing(tmp_path) -> None:
    tiny_png(tmp_path / "gan" / "samples.png")
    write_compare(tmp_path)
    markdown = write_report(tmp_path, treatment="ganpso", control="absent")[0].read_text()
    assert "no cells for `absent`" in markdown
    assert "`gan/gan-metrics.json` is absent" in markdown
    assert "gan-samples.png" in markdown


def test_gan_targets_stand_beside_the_measured_values(full_report) -> None:
    markdown = full_report[0]
    assert "| cas accuracy at least 0.45 | 0.470 ± 0.010 (3 seeds) | met |" in markdown
    assert "| disgust fid within 2x of other classes mean | 2.30x | **missed** |" in markdown


def test_methods_come_in_the_comparison_order_with_their_titles(full_report) -> None:
    markdown = full_report[0]
    assert "Methods: `cnn` = CNN; `oversample` = OVERSAMPLE; `ganpso` = GANPSO;" in markdown
    table = markdown.split("## Comparison on PrivateTest")[1].split("##")[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    # the registry's order (not the folders' alphabetical one), unknown names last
    assert rows[1:] == ["cnn", "oversample", "ganpso", "hog-svm"]


def test_the_readme_table_is_the_one_comparison_json_generates() -> None:
    from ganpso.report.readme_table import TABLE, readme_table

    root = Path(__file__).parents[1]
    data = json.loads((root / "results" / "compare" / "comparison.json").read_text())
    assert TABLE.in_file(root / "README.md") == readme_table(data), (
        "README's table differs from results/compare/comparison.json: run "
        "python -m ganpso.report.readme_table results/compare/comparison.json README.md"
    )


def test_readme_table_marks_the_best_trained_row_and_needs_its_markers(tmp_path: Path) -> None:
    from ganpso.errors import ConfigError
    from ganpso.report.readme_table import BEGIN, END, TABLE, readme_table

    def row(method: str, f1: float, seeds: list[int]) -> dict:
        measure = {"mean": f1, "std": 0.01, "ci": [f1 - 0.02, f1 + 0.02]}
        names = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_g_measure")
        return {"method": method, "seeds": seeds, **{n: measure for n in names},
                "cpu_seconds": 1500.0, "gpu_seconds": None}  # fmt: skip

    data = {"rows": [row("cnn", 0.6, [0, 1]), row("ganpso", 0.7, [0, 1]), row("hog_svm", 0.9, [0])],
            "device": "cpu: test"}  # fmt: skip
    table = readme_table(data)
    lines = table.splitlines()
    assert lines[2].startswith("| HOG") and "**" not in lines[2]  # unseeded: never "best"
    assert lines[3].startswith("| **GAN-PSO** (`ganpso`)") and "**0.700 ± 0.010" in lines[3]
    assert "1,500" in lines[3] and table.endswith("Devices: cpu: test.")
    ensemble = row("cnn_ensemble", 0.95, []) | {"ensemble_of": [0, 1]}
    with_ensemble = readme_table({**data, "rows": [ensemble, *data["rows"]]}).splitlines()
    assert with_ensemble[5].startswith("| seed ensemble: plain CNN (`cnn_ensemble`) | 0, 1 |")
    assert "**0.950" in with_ensemble[5] and "**0.700" in with_ensemble[3]  # best of each part
    swarm = row("ganpso_swarm_ensemble", 0.9, [0]) | {"ensemble_of": ["p1", "base"]}
    with_swarm = readme_table({**data, "rows": [swarm, *data["rows"]]}).splitlines()
    assert with_swarm[5].startswith("| **GAN-PSO, ensemble of its rescored trainings")
    assert "(`ganpso_swarm_ensemble`) | p1, base |" in with_swarm[5]
    page = tmp_path / "page.md"
    page.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    (tmp_path / "c.json").write_text(json.dumps(data))
    assert TABLE.update(tmp_path / "c.json", page)
    assert page.read_text() == f"intro\n{BEGIN}\n{table}\n{END}\noutro\n"
    assert not TABLE.update(tmp_path / "c.json", page)  # already up to date
    page.write_text("no markers")
    with pytest.raises(ConfigError, match="page.md: no generated-block markers"):
        TABLE.update(tmp_path / "c.json", page)


def paired_json(p_ttest: float | None, images: dict | None) -> dict:
    per_seed = [
        {"seed": 0, "a": 0.71, "b": 0.70, "diff": 0.01},
        {"seed": 3, "a": 0.69, "b": 0.70, "diff": -0.01},
    ]
    seeds = {"diff": 0.0, "ci": [-0.127, 0.127], "p_ttest": p_ttest, "per_seed": per_seed}
    return {
        "a": {"method": "gan_fixed"},
        "b": {"method": "cnn"},
        "seeds": [0, 3],
        "split": "PrivateTest",
        "tests": [
            {"metric": "macro_f1", "seeds": seeds, "images": images},
            {"metric": "disgust_f1", "seeds": seeds, "images": None},
        ],
    }


def test_paired_table_has_a_column_per_seed_and_dashes_for_what_was_not_measured() -> None:
    from ganpso.report.paired_table import paired_table

    images = {"seeds": [3], "diff": 0.0123, "ci": [-0.004, 0.03], "p": 0.2}
    lines = paired_table(paired_json(0.5, images)).splitlines()
    assert lines[0] == (
        "| PrivateTest, gan_fixed - cnn | seed 0 | seed 3 | mean over seeds (95 % t interval) "
        "| paired t, p | images of seed 3: paired bootstrap (95 %) |"
    )
    assert lines[2] == (
        "| macro F1 | +0.0100 | -0.0100 | +0.0000 (-0.1270 to +0.1270) | 0.500 "
        "| +0.0123 (-0.0040 to +0.0300), p 0.200 |"
    )
    assert lines[3].startswith("| disgust F1 |") and lines[3].endswith("| 0.500 | - |")
    unpaired = paired_table(paired_json(None, None)).splitlines()
    assert unpaired[0].endswith("| images: paired bootstrap |")
    assert unpaired[2].endswith("| - | - |")


@pytest.mark.parametrize(
    "paired", ["results/gan/downstream.json", "results/recipe/oversample-vs-plain.json"]
)
def test_a_readme_paired_table_is_the_one_its_json_generates(paired: str) -> None:
    from ganpso.report.paired_table import TABLE, paired_table

    path = Path(__file__).parents[1] / paired
    readme = path.parent / "README.md"
    data = json.loads(path.read_text())
    assert TABLE.in_file(readme) == paired_table(data), (
        f"{readme}'s paired table differs from {path.name}: run "
        f"python -m ganpso.report.paired_table {paired} {paired.rsplit('/', 1)[0]}/README.md"
    )


def test_a_generated_block_needs_both_markers_in_order(tmp_path: Path) -> None:
    from ganpso.errors import ConfigError
    from ganpso.report.marked_block import GeneratedTable

    table = GeneratedTable(lambda data: f"n = {data['n']}", "<!-- b -->", "<!-- e -->")
    page, data = tmp_path / "page.md", tmp_path / "data.json"
    data.write_text('{"n": 3}')
    page.write_text("<!-- e -->\n<!-- b -->\nold\n")  # the end marker before the begin
    with pytest.raises(ConfigError, match="page.md: no generated-block markers"):
        table.in_file(page)
    with pytest.raises(ConfigError, match="page.md: no generated-block markers"):
        table.update(data, page)
    assert page.read_text() == "<!-- e -->\n<!-- b -->\nold\n"  # nothing lost
    page.write_text("<!-- b -->\nold\n<!-- e -->\n")
    assert table.update(data, page)
    assert table.in_file(page) == "n = 3"


def test_a_generated_table_command_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from ganpso.report.paired_table import TABLE

    page, data = tmp_path / "page.md", tmp_path / "data.json"
    page.write_text(f"{TABLE.begin}\nold\n{TABLE.end}\n")
    cases = {
        "no_such.json": "no_such.json: cannot be read (No such file or directory)",
        "broken": "data.json: not JSON (Expecting property name enclosed in double quotes, line 1)",
        "other": "data.json: not the JSON this table reads ('seeds')",
    }
    for case, message in cases.items():
        source = tmp_path / case if case == "no_such.json" else data
        data.write_text("{" if case == "broken" else '{"rows": []}')
        monkeypatch.setattr("sys.argv", ["paired_table", str(source), str(page)])
        with pytest.raises(SystemExit) as exit_info:
            TABLE.main("test", "JSON")
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert page.read_text() == f"{TABLE.begin}\nold\n{TABLE.end}\n"  # nothing lost
