import json

import numpy as np
import pytest

from ganpso.classifier.evaluation import write_predictions
from ganpso.emotions import EMOTIONS
from ganpso.metrics import bootstrap_ci, build_metrics_report, classification_metrics, write_json
from ganpso.metrics.statistics import METRICS, pooled_ci
from ganpso.pipeline.folders import (
    PRIVATE_METRICS_FILE,
    Cell,
    load_cells,
    write_cell_record,
)
from ganpso.report.summary import metric_value, paired_test, per_class_means, summarise
from ganpso.report.tables import markdown_table, per_class_table

N_IMAGES = 300
SKILL = {"weak": 0.3, "middle": 0.5, "strong": 0.8}  # chance of predicting the true label


def truth(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, len(EMOTIONS), N_IMAGES)


def make_cell(method: str, seed: int, y_true: np.ndarray, skill: float) -> Cell:
    rng = np.random.default_rng(1000 * seed + int(skill * 100))
    noise = rng.integers(0, len(EMOTIONS), len(y_true))
    y_pred = np.where(rng.random(len(y_true)) < skill, y_true, noise)
    metrics = build_metrics_report(
        y_true, y_pred, split="PrivateTest", device="cpu: test", seconds=1.0, command="t", n_boot=50
    )
    run = {"device": "cpu: test", "wall_seconds": 10.0 + seed}
    return Cell(method, seed, metrics, y_true, y_pred, run)


@pytest.fixture(scope="module")
def cells() -> list[Cell]:
    y_true = truth()
    return [make_cell(m, s, y_true, skill) for m, skill in SKILL.items() for s in range(3)]


def test_summary_means_and_std_match_numpy(cells) -> None:
    rows = summarise(cells, n_boot=200)
    assert [row.method for row in rows] == list(SKILL)
    for row in rows:
        group = [c for c in cells if c.method == row.method]
        assert row.n == 3
        assert row.wall_seconds == pytest.approx(11.0)
        for name in METRICS:
            values = np.array([metric_value(c.metrics, name) for c in group])
            assert row.mean[name] == pytest.approx(values.mean())
            assert row.std[name] == pytest.approx(values.std(ddof=1))


def test_intervals_contain_the_point_estimate(cells) -> None:
    for row in summarise(cells, n_boot=300):
        for name in ("accuracy", "macro_f1"):
            low, high = row.ci95[name]
            assert low <= row.mean[name] <= high
            assert high - low < 0.2


def test_one_seed_pooled_interval_equals_bootstrap_ci(cells) -> None:
    cell = cells[0]
    expected = bootstrap_ci(cell.y_true, cell.y_pred, len(EMOTIONS), n_boot=200, seed=3)
    for name in ("accuracy", "macro_f1"):
        interval = pooled_ci(cell.y_true, [cell.y_pred], name, n_boot=200, seed=3)
        assert interval == pytest.approx(expected[name])


def test_paired_test_identical_methods_gives_p_one(cells) -> None:
    group = [c for c in cells if c.method == "middle"]
    result = paired_test(group, group, n_boot=300)
    assert result.difference == 0.0
    assert result.p_bootstrap == pytest.approx(1.0)
    assert result.ci95 == (0.0, 0.0)
    assert result.n_pairs == 3 and result.p_ttest == pytest.approx(1.0)


def test_paired_test_detects_a_clearly_better_method(cells) -> None:
    strong = [c for c in cells if c.method == "strong"]
    weak = [c for c in cells if c.method == "weak"]
    result = paired_test(strong, weak, metric="macro_f1", n_boot=500)
    assert result.difference > 0.3
    assert result.p_bootstrap < 0.01
    assert 0 < result.ci95[0] <= result.difference <= result.ci95[1]
    assert result.n_pairs == 3 and result.p_ttest < 0.01 and result.t_statistic > 0


def test_paired_test_means_match_the_reports(cells) -> None:
    group = [c for c in cells if c.method == "weak"]
    for name in METRICS:
        result = paired_test(group, group, metric=name, n_boot=10)
        expected = np.mean([metric_value(c.metrics, name) for c in group])
        assert result.mean_a == pytest.approx(expected, abs=1e-12)


def test_paired_test_without_three_seeds_skips_the_t_test(cells) -> None:
    result = paired_test(cells[:2], cells[3:4], n_boot=50)
    assert result.p_ttest is None and result.n_pairs == 1


def test_paired_test_refuses_different_test_images(cells) -> None:
    other = make_cell("other", 0, truth(seed=9), 0.5)
    with pytest.raises(ValueError, match="y_true differs"):
        paired_test(cells[:1], [other], n_boot=10)
    with pytest.raises(KeyError, match="valid metrics"):
        paired_test(cells[:1], cells[:1], metric="nope")


def test_markdown_table_has_one_row_per_method(cells) -> None:
    external = Cell("external", None, cells[0].metrics)  # evaluated once, no predictions
    rows = summarise([*cells, external], n_boot=50)
    lines = markdown_table(rows).splitlines()
    assert len(lines) == 2 + len(SKILL) + 1
    assert [line.split("|")[1].strip() for line in lines[2:]] == [*SKILL, "external"]
    external_row = rows[-1]
    assert external_row.n == 1 and external_row.std["accuracy"] is None
    assert external_row.ci95["accuracy"] == tuple(cells[0].metrics["accuracy_ci95"])
    assert "±" not in lines[-1]


def test_per_class_means_and_table(cells) -> None:
    means = per_class_means(cells)
    group = [c for c in cells if c.method == "strong"]
    expected = np.mean([c.metrics["per_class"]["fear"]["f1"] for c in group])
    assert means["strong"]["per_class"]["fear"]["f1"] == pytest.approx(expected)
    table = per_class_table(cells)
    assert [row[0] for row in table.rows] == list(EMOTIONS)
    assert len(table.headers) == 1 + 3 * len(SKILL)


def test_load_cells_reads_the_compare_layout(tmp_path, cells) -> None:
    for cell in cells[:4]:
        folder = tmp_path / cell.method / f"seed{cell.seed}"
        write_json(cell.metrics, folder / PRIVATE_METRICS_FILE)
        write_predictions(folder, cell.y_true, cell.y_pred)
        write_cell_record(folder, cell.run)
    write_json(cells[0].metrics, tmp_path / "external" / PRIVATE_METRICS_FILE)
    loaded = load_cells(tmp_path)
    assert [(c.method, c.seed) for c in loaded] == [
        ("external", None),
        ("middle", 0),
        ("weak", 0),
        ("weak", 1),
        ("weak", 2),
    ]
    weak = loaded[2]
    np.testing.assert_array_equal(weak.y_pred, cells[0].y_pred)
    assert weak.run["wall_seconds"] == 10.0
    assert classification_metrics(weak.y_true, weak.y_pred)["accuracy"] == weak.metrics["accuracy"]


def test_comparison_data_rows_tests_and_compute(tmp_path) -> None:
    from ganpso.report.comparison_data import comparison_data, write_comparison_json

    y_true = truth()
    skills = {"cnn": 0.5, "oversample": 0.6, "ganpso": 0.8}
    cells = [make_cell(m, s, y_true, skill) for m, skill in skills.items() for s in range(3)]
    gpu_cell = make_cell("oversample", 3, y_true, 0.6)
    gpu_cell.run.update(device="cuda: test", wall_seconds=2.0)
    cells.append(gpu_cell)
    (tmp_path / "run" / "gan").mkdir(parents=True)
    (tmp_path / "run" / "gan" / "stage.json").write_text('{"seconds": 100.0}')
    (tmp_path / "run" / "search").mkdir()
    (tmp_path / "run" / "search" / "stage.json").write_text('{"seconds": 50.0}')
    data = comparison_data(cells, run_dir=tmp_path / "run", command="c", n_boot=100)

    assert data["best_baseline"] == "oversample"
    rows = {row["method"]: row for row in data["rows"]}
    f1 = [metric_value(c.metrics, "macro_f1") for c in cells if c.method == "ganpso"]
    assert rows["ganpso"]["macro_f1"]["mean"] == pytest.approx(np.mean(f1), abs=1e-4)
    assert rows["ganpso"]["macro_f1"]["std"] == pytest.approx(np.std(f1, ddof=1), abs=1e-4)
    low, high = rows["ganpso"]["macro_g_measure"]["ci"]
    assert low <= rows["ganpso"]["macro_g_measure"]["mean"] <= high
    assert rows["ganpso"]["seeds"] == [0, 1, 2]
    assert rows["ganpso"]["cpu_seconds"] == pytest.approx(11.0 + 150.0)  # cells + GAN + search
    assert rows["cnn"]["cpu_seconds"] == pytest.approx(11.0)
    assert rows["cnn"]["gpu_seconds"] is None
    # a GPU second is not a CPU second: the seed trained on a GPU counts apart
    assert rows["oversample"]["cpu_seconds"] == pytest.approx(11.0)
    assert rows["oversample"]["gpu_seconds"] == pytest.approx(2.0)
    assert rows["oversample"]["seeds"] == [0, 1, 2, 3]
    pairs = {(t["a"], t["b"], t["metric"]) for t in data["tests"]}
    assert ("ganpso", "oversample", "macro_f1") in pairs and ("ganpso", "cnn", "accuracy") in pairs
    assert len(data["tests"]) == 10  # two opponents x five measures
    better = next(t for t in data["tests"] if t["b"] == "oversample" and t["metric"] == "macro_f1")
    assert better["diff"] > 0 and better["ci"][0] > 0 and better["n_pairs"] == 3

    for cell in cells:
        write_predictions(tmp_path / "cmp" / cell.method / f"seed{cell.seed}", y_true, cell.y_pred)
        folder = tmp_path / "cmp" / cell.method / f"seed{cell.seed}"
        write_json(cell.metrics, folder / PRIVATE_METRICS_FILE)
        write_cell_record(folder, cell.run)
    path = write_comparison_json(tmp_path / "cmp", command="c")
    assert path is not None and path.name == "comparison.json"
    assert write_comparison_json(tmp_path / "nothing") is None
    with_gan = [*cells, *(make_cell("gan_fixed", s, y_true, 0.55) for s in range(3))]
    gan_tests = [
        t for t in comparison_data(with_gan, n_boot=100)["tests"] if t["a"] == "gan_fixed"
    ]  # the GAN's own effect, on the rare classes too
    assert {(t["b"], t["metric"]) for t in gan_tests} == {
        ("cnn", name)
        for name in ("accuracy", "macro_precision", "macro_recall", "macro_f1",
                     "macro_g_measure", "disgust_f1", "fear_f1")
    }  # fmt: skip


def test_one_class_scores_match_scikit_learn() -> None:
    from sklearn.metrics import f1_score, recall_score

    from ganpso.metrics.statistics import metric_of

    rng = np.random.default_rng(3)
    y_true, y_pred = truth(), rng.integers(0, len(EMOTIONS), N_IMAGES)
    for name, score in {
        "disgust_f1": f1_score,
        "fear_f1": f1_score,
        "disgust_recall": recall_score,
    }.items():
        label = EMOTIONS.index(name.split("_")[0])
        expected = score(y_true, y_pred, labels=[label], average=None)[0]
        assert metric_of(y_true, y_pred, name) == pytest.approx(expected)
        cell = make_cell("m", 0, y_true, 0.5)
        assert metric_value(cell.metrics, name) == pytest.approx(
            score(y_true, cell.y_pred, labels=[label], average=None)[0]
        )


def test_seed_ensembles_average_saved_probabilities_and_meet_only_ensembles(tmp_path) -> None:
    from ganpso.report.comparison_data import write_comparison_json

    y_true = truth()
    rng = np.random.default_rng(0)
    probabilities = {}
    for method, seeds in {"ganpso": 2, "cnn": 3, "oversample": 1}.items():
        for seed in range(seeds):
            probs = rng.dirichlet(np.ones(len(EMOTIONS)), len(y_true))
            probs[np.arange(len(y_true)), y_true] += 0.3 if method == "ganpso" else 0.2
            probabilities[method, seed] = probs
            folder = tmp_path / method / f"seed{seed}"
            write_predictions(folder, y_true, probs.argmax(1), probs)
            cell = make_cell(method, seed, y_true, 0.5)
            write_json(cell.metrics, folder / PRIVATE_METRICS_FILE)
            write_cell_record(folder, {"device": "cpu: test", "wall_seconds": 10.0})
    swarm = tmp_path / "ganpso_swarm_ensemble" / "seed0"  # the run's ensemble of its trainings
    write_predictions(swarm, y_true, y_true, np.eye(len(EMOTIONS))[y_true])
    write_json(make_cell("ganpso_swarm_ensemble", 0, y_true, 1.0).metrics,
               swarm / PRIVATE_METRICS_FILE)  # fmt: skip
    write_cell_record(swarm, {"device": "cpu: test", "wall_seconds": 3.0, "members": ["p1", "base"],
                              "cpu_seconds": 3.0, "gpu_seconds": None})  # fmt: skip
    path = write_comparison_json(tmp_path, command="c")
    assert path is not None
    data = json.loads(path.read_text())
    rows = {row["method"]: row for row in data["rows"]}
    # ganpso has 2 seeds: ensembles of 2; oversample has too few, cnn uses its first 2
    assert {"ganpso_ensemble", "cnn_ensemble"} <= set(rows) and "oversample_ensemble" not in rows
    assert rows["cnn_ensemble"]["ensemble_of"] == [0, 1] and rows["cnn_ensemble"]["seeds"] == []
    expected = (probabilities["cnn", 0] + probabilities["cnn", 1]).argmax(1)
    assert rows["cnn_ensemble"]["accuracy"]["mean"] == pytest.approx(
        np.mean(expected == y_true), abs=1e-4
    )
    assert rows["cnn_ensemble"]["cpu_seconds"] == pytest.approx(20.0)  # both members' training
    pairs = {(t["a"], t["b"]) for t in data["tests"]}
    assert ("ganpso_ensemble", "cnn_ensemble") in pairs
    assert ("ganpso_swarm_ensemble", "cnn_ensemble") in pairs
    assert not {("ganpso_ensemble", "cnn"), ("ganpso", "cnn_ensemble")} & pairs
    assert not {("ganpso_swarm_ensemble", "cnn")} & pairs
    assert rows["ganpso_swarm_ensemble"]["ensemble_of"] == ["p1", "base"]
    assert "ganpso_swarm_ensemble_ensemble" not in rows
    assert data["best_baseline_ensemble"] == "cnn_ensemble"
