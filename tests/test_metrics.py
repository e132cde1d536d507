import json

import numpy as np
import pytest
from imblearn.metrics import geometric_mean_score, specificity_score
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from ganpso.emotions import EMOTIONS
from ganpso.metrics import (
    bootstrap_ci,
    build_metrics_report,
    classification_metrics,
    confusion_matrix,
    format_metrics_table,
    plot_confusion_matrix,
    plot_per_class_bars,
    plot_training_curves,
)

LABELS = list(range(7))


def random_case(seed: int, never_predicted: int | None = None, absent: int | None = None):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 7, 400)
    y_pred = np.where(rng.random(400) < 0.6, y_true, rng.integers(0, 7, 400))
    if never_predicted is not None:
        y_pred[y_pred == never_predicted] = (never_predicted + 1) % 7
    if absent is not None:
        y_true[y_true == absent] = (absent + 2) % 7
    return y_true, y_pred


CASES = [(s, None, None) for s in range(5)] + [(10, 1, None), (11, None, 3), (12, 2, 2)]


@pytest.mark.parametrize(("seed", "never_predicted", "absent"), CASES)
def test_matches_scikit_learn(seed, never_predicted, absent) -> None:
    y_true, y_pred = random_case(seed, never_predicted, absent)
    ours = classification_metrics(y_true, y_pred)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=LABELS, zero_division=0
    )
    rows = [ours["per_class"][name] for name in EMOTIONS]
    np.testing.assert_allclose([r["precision"] for r in rows], precision, atol=1e-12)
    np.testing.assert_allclose([r["recall"] for r in rows], recall, atol=1e-12)
    np.testing.assert_allclose([r["f1"] for r in rows], f1, atol=1e-12)
    assert [r["support"] for r in rows] == support.tolist()
    np.testing.assert_allclose(ours["macro"]["f1"], f1.mean(), atol=1e-12)
    np.testing.assert_allclose(ours["macro"]["precision"], precision.mean(), atol=1e-12)
    assert ours["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert ours["confusion_matrix"] == sk_confusion_matrix(y_true, y_pred, labels=LABELS).tolist()
    specificity = specificity_score(y_true, y_pred, labels=LABELS, average=None)
    np.testing.assert_allclose([r["specificity"] for r in rows], specificity, atol=1e-12)
    np.testing.assert_allclose(
        [r["g_measure"] for r in rows], np.sqrt(precision * recall), atol=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
def test_g_mean_matches_imbalanced_learn(seed) -> None:
    # every class present in y_true: imbalanced-learn's multiclass G-mean is then the geometric
    # mean of the 7 recalls (for absent classes it averages over the labels it sees instead)
    y_true, y_pred = random_case(seed)
    expected = geometric_mean_score(y_true, y_pred, labels=LABELS, average="multiclass")
    assert classification_metrics(y_true, y_pred)["g_mean"] == pytest.approx(expected, abs=1e-12)


def test_hand_computed_golden_case() -> None:
    # 3 classes; class 2 ("c") is never predicted.
    #            predicted a  b  c
    # true a              3  1  0
    # true b              1  2  0
    # true c              1  1  0
    y_true = [0, 0, 0, 0, 1, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 0, 1, 1, 0, 1]
    m = classification_metrics(y_true, y_pred, classes=("a", "b", "c"))
    assert m["confusion_matrix"] == [[3, 1, 0], [1, 2, 0], [1, 1, 0]]
    assert m["accuracy"] == pytest.approx(5 / 9)
    a, b, c = (m["per_class"][k] for k in "abc")
    assert a["precision"] == pytest.approx(3 / 5) and a["recall"] == pytest.approx(3 / 4)
    assert a["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert a["g_measure"] == pytest.approx((0.6 * 0.75) ** 0.5)
    assert a["specificity"] == pytest.approx(3 / 5)  # TN 3 of the 5 non-a images
    assert b["precision"] == pytest.approx(2 / 4) and b["recall"] == pytest.approx(2 / 3)
    assert b["specificity"] == pytest.approx(4 / 6)
    assert c == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "g_measure": 0.0,
        "specificity": 1.0,
        "support": 2,
    }
    assert m["macro"]["recall"] == pytest.approx((0.75 + 2 / 3 + 0) / 3)
    assert m["g_mean"] == 0.0  # one recall is zero


def test_confusion_matrix_counts() -> None:
    assert confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3).tolist() == [
        [1, 0, 0],
        [0, 1, 1],
        [0, 0, 1],
    ]


def test_bootstrap_is_seeded_contains_estimate_and_narrows_with_n() -> None:
    small = random_case(0)
    rng = np.random.default_rng(1)
    big_true = rng.integers(0, 7, 4000)
    big = (big_true, np.where(rng.random(4000) < 0.6, big_true, rng.integers(0, 7, 4000)))
    ci = bootstrap_ci(*small, num_classes=7, n_boot=500, seed=3)
    assert ci == bootstrap_ci(*small, num_classes=7, n_boot=500, seed=3)
    point = classification_metrics(*small)
    assert ci["accuracy"][0] <= point["accuracy"] <= ci["accuracy"][1]
    assert ci["macro_f1"][0] <= point["macro"]["f1"] <= ci["macro_f1"][1]
    wide = ci["accuracy"][1] - ci["accuracy"][0]
    narrow = bootstrap_ci(*big, num_classes=7, n_boot=500, seed=3)["accuracy"]
    assert narrow[1] - narrow[0] < wide / 2


def test_report_schema_order_and_json() -> None:
    y_true, y_pred = random_case(0)
    report = build_metrics_report(
        y_true,
        y_pred,
        split="PublicTest",
        device="cpu",
        seconds=1.5,
        command="ganpso evaluate x",
        n_boot=50,
    )
    assert list(report) == [
        "split",
        "n",
        "classes",
        "accuracy",
        "accuracy_ci95",
        "macro",
        "macro_classes",
        "macro_f1_ci95",
        "g_mean",
        "per_class",
        "confusion_matrix",
        "device",
        "seconds",
        "command",
    ]
    assert list(report["macro"]) == ["precision", "recall", "f1", "g_measure"]
    assert list(report["per_class"]["disgust"]) == [
        "precision",
        "recall",
        "f1",
        "g_measure",
        "specificity",
        "support",
    ]
    assert json.loads(json.dumps(report)) == report
    assert "disgust" in format_metrics_table(report)


def test_plots_write_png_files(tmp_path) -> None:
    y_true, y_pred = random_case(0)
    report = classification_metrics(y_true, y_pred)
    plot_confusion_matrix(report["confusion_matrix"], EMOTIONS, tmp_path / "cm.png", "title")
    history = [
        {"epoch": e, "train/loss": 1 / e, "val/accuracy": 0.1 * e, "lr": 0.1} for e in (1, 2)
    ]
    plot_training_curves(history, tmp_path / "curves.png")
    plot_per_class_bars({"a": report, "b": report}, "recall", tmp_path / "bars.png")
    for name in ("cm.png", "curves.png", "bars.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_macro_over_present_classes_matches_sklearn_labels() -> None:
    from sklearn.metrics import f1_score, recall_score

    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 0])  # classes 3..6 have no images
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2, 3])
    ours = classification_metrics(y_true, y_pred, EMOTIONS, present_only=True)
    present = [0, 1, 2]
    assert ours["macro_classes"] == list(EMOTIONS[:3])
    expected_f1 = f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    assert ours["macro"]["f1"] == pytest.approx(expected_f1)
    recalls = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    assert ours["g_mean"] == pytest.approx(float(np.prod(recalls) ** (1 / 3)))
    everything = classification_metrics(y_true, y_pred, EMOTIONS)
    assert everything["g_mean"] == 0.0 and everything["macro"]["f1"] < ours["macro"]["f1"]
