import numpy as np
import pytest

from factories import tiny_dataset
from ganpso.classifier.classic import (
    ClassicConfig,
    extract_features,
    fit_classic,
    hog_features,
    lbp_histograms,
)
from ganpso.data import Split
from ganpso.errors import ConfigError


def stripes(label: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 48, 48) uint8: horizontal stripes for label 0, vertical for label 1, noisy."""
    period = rng.integers(3, 7, count)[:, None]  # (count, 1)
    phase = np.arange(48)[None, :] % period < period // 2  # (count, 48)
    images = (
        np.where(phase[:, :, None], 200, 40) if label == 0 else np.where(phase[:, None], 200, 40)
    )
    images = images + rng.integers(-30, 30, (count, 48, 48))
    return images.clip(0, 255).astype(np.uint8)


def stripes_split(per_class: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    images = np.concatenate([stripes(0, per_class, rng), stripes(1, per_class, rng)])
    return Split(images, np.repeat(np.arange(2, dtype=np.int64), per_class))


def test_feature_shapes_and_lbp_histograms_sum_to_one() -> None:
    images = tiny_dataset(per_class=1)["Training"].images  # (7, 48, 48)
    assert hog_features(images).shape == (7, 900)
    histograms = lbp_histograms(images)
    assert histograms.shape == (7, 36 * 10)
    np.testing.assert_allclose(histograms.reshape(7, 36, 10).sum(-1), 1.0, rtol=1e-6)
    assert extract_features(images, ClassicConfig(features="hog")).shape == (7, 900)
    assert extract_features(images, ClassicConfig()).shape == (7, 1260)


@pytest.mark.parametrize("features", ["hog", "hog+lbp"])
def test_fits_and_predicts_the_right_shapes(features) -> None:
    dataset = tiny_dataset(per_class=8)
    config = ClassicConfig(features=features, c_grid=(0.01, 1.0))
    model = fit_classic(dataset["Training"], dataset["PublicTest"], config)
    unseen = tiny_dataset(per_class=4, seed=5)["Training"]
    predicted = model.predict(unseen.images)
    assert predicted.shape == (len(unseen),) and predicted.dtype == np.int64
    assert model.scores(unseen.images).shape == (len(unseen), 7)
    assert set(model.val_scores) == {0.01, 1.0} and model.c in model.val_scores
    assert model.val_scores[model.c] == max(model.val_scores.values())
    assert (predicted == unseen.labels).mean() >= 0.9  # a bright band per class, unseen noise


def test_learns_a_separable_toy_problem() -> None:
    model = fit_classic(stripes_split(20, 0), stripes_split(10, 1), ClassicConfig())
    test = stripes_split(25, 2)
    assert (model.predict(test.images) == test.labels).mean() == 1.0
    scores = model.scores(test.images)  # classes never seen in training can never win
    assert scores.shape == (50, 7) and np.isneginf(scores[:, 2:]).all()


def test_same_seed_same_model() -> None:
    dataset = tiny_dataset(per_class=5)
    first, second = (
        fit_classic(dataset["Training"], dataset["PublicTest"], ClassicConfig(seed=3))
        for _ in range(2)
    )
    images = dataset["PrivateTest"].images
    np.testing.assert_array_equal(first.scores(images), second.scores(images))


def test_config_validation_lists_the_options() -> None:
    with pytest.raises(ConfigError, match="hog\\+lbp"):
        ClassicConfig(features="sift")
    with pytest.raises(ConfigError, match="c_grid"):
        ClassicConfig(c_grid=())
