"""The search's fitness: the weighted mean of the five PublicTest measures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from ganpso.config import validate
from ganpso.errors import ConfigError
from ganpso.metrics import classification_metrics
from ganpso.metrics.fitness import DEFAULT_WEIGHTS, MEASURES, fitness, measures_of
from ganpso.pipeline.config import SearchConfig
from ganpso.pipeline.objective import row_fitness

TRUE = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
PREDICTED = np.array([0, 1, 1, 1, 2, 2, 2, 0, 2])


def test_measures_match_scikit_learn() -> None:
    values = measures_of(classification_metrics(TRUE, PREDICTED, ("a", "b", "c")))
    precision, recall, f1, _ = precision_recall_fscore_support(TRUE, PREDICTED, average="macro")
    assert values["accuracy"] == pytest.approx(accuracy_score(TRUE, PREDICTED))
    assert values["macro_precision"] == pytest.approx(precision)
    assert values["macro_recall"] == pytest.approx(recall)
    assert values["macro_f1"] == pytest.approx(f1)
    assert set(values) == set(MEASURES)


def test_default_fitness_is_the_plain_mean_and_weights_reweigh_it() -> None:
    values = dict(zip(MEASURES, [0.7, 0.6, 0.5, 0.4, 0.3], strict=True))
    assert fitness(values, DEFAULT_WEIGHTS) == pytest.approx(0.5)
    assert fitness(values, {"macro_f1": 1.0}) == pytest.approx(0.4)
    assert fitness(values, {"accuracy": 3.0, "macro_g_measure": 1.0}) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"top5": 1.0}, "unknown measures"),
        ({"macro_f1": -1.0}, "must be a number >= 0"),
        ({"macro_f1": 0.0}, "at least one positive weight"),
    ],
)
def test_bad_weights_are_refused_by_the_search_config(weights, message) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(SearchConfig.from_dict({"fitness": weights}), "search")


def test_a_history_row_without_the_five_measures_says_how_to_go_on() -> None:
    old_row = {"val/accuracy": 0.7, "val/macro_f1": 0.66}
    assert row_fitness(old_row, {"macro_f1": 1.0}, "old") == pytest.approx(0.66)
    with pytest.raises(ConfigError, match=r"old: its history has no macro_precision"):
        row_fitness(old_row, DEFAULT_WEIGHTS, "old")


def test_the_report_names_what_the_search_maximised(tmp_path) -> None:
    from ganpso.report.sections import fitness_words

    (tmp_path / "config.yaml").write_text("search: {space: {}}\n")
    assert fitness_words(tmp_path) == "macro-F1"  # a run from before the five measures
    (tmp_path / "config.yaml").write_text(f"search: {{fitness: {DEFAULT_WEIGHTS}}}\n")
    assert fitness_words(tmp_path).startswith("mean of accuracy, macro_precision")
