"""Losses for imbalanced classes against their formulas, and deferred re-weighting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from factories import tiny_dataset
from ganpso.classifier.config import LossConfig, ModelConfig, TrainConfig
from ganpso.classifier.losses import (
    ImbalanceLoss,
    class_weights,
    ldam_margins,
    reweighting,
)
from ganpso.classifier.training import fit
from ganpso.pipeline.compare import method_config

COUNTS = torch.tensor([400.0, 40.0, 400.0, 700.0, 480.0, 310.0, 500.0])
LOGITS = torch.randn(12, 7, generator=torch.Generator().manual_seed(0))
TARGET = torch.tensor([0, 1, 2, 3, 4, 5, 6, 1, 1, 3, 0, 2])


def loss(name: str, smoothing: float = 0.0, **options: float) -> ImbalanceLoss:
    return ImbalanceLoss(LossConfig(name=name, **options), COUNTS, smoothing)  # type: ignore[arg-type]


def test_focal_is_its_formula_and_cross_entropy_at_gamma_zero() -> None:
    p_t = F.softmax(LOGITS, 1)[torch.arange(12), TARGET]
    expected = (-((1 - p_t) ** 2) * p_t.log()).mean()
    torch.testing.assert_close(loss("focal")(LOGITS, TARGET), expected)
    torch.testing.assert_close(
        loss("focal", focal_gamma=0.0)(LOGITS, TARGET), F.cross_entropy(LOGITS, TARGET)
    )


def test_focal_class_weights_give_a_weighted_mean() -> None:
    weights = torch.rand(7, generator=torch.Generator().manual_seed(1)) + 0.5
    per_image = loss("focal", focal_gamma=0.0)(LOGITS, TARGET, weights)
    torch.testing.assert_close(per_image, F.cross_entropy(LOGITS, TARGET, weight=weights))


def test_logit_adjusted_adds_tau_log_prior() -> None:
    prior = COUNTS / COUNTS.sum()
    expected = F.cross_entropy(LOGITS + 2.0 * prior.log(), TARGET, label_smoothing=0.1)
    torch.testing.assert_close(loss("logit_adjusted", 0.1, logit_tau=2.0)(LOGITS, TARGET), expected)
    flat = ImbalanceLoss(LossConfig(name="logit_adjusted"), torch.full((7,), 5.0), 0.0)
    torch.testing.assert_close(flat(LOGITS, TARGET), F.cross_entropy(LOGITS, TARGET))


def test_ldam_margins_grow_as_classes_shrink_and_shift_the_true_logit() -> None:
    margins = ldam_margins(COUNTS, 0.5)
    assert margins[1] == pytest.approx(0.5) and margins.argmax() == 1  # disgust, the rarest
    assert margins[3] == pytest.approx(0.5 * (40 / 700) ** 0.25)
    shifted = LOGITS - F.one_hot(TARGET, 7) * margins[TARGET][:, None]
    expected = F.cross_entropy(30.0 * shifted, TARGET)
    torch.testing.assert_close(loss("ldam")(LOGITS, TARGET), expected)


def test_effective_number_weights_favour_rare_classes_and_keep_scale() -> None:
    labels = torch.repeat_interleave(torch.arange(7), COUNTS.long())
    weights = class_weights(labels, "effective_number")
    assert weights is not None and weights.argmax() == 1
    assert float((weights * COUNTS).sum()) == pytest.approx(float(COUNTS.sum()), rel=1e-5)


def test_deferred_reweighting_starts_at_its_fraction_of_the_epochs() -> None:
    config = TrainConfig(epochs=10, reweight_from=0.8)
    assert [reweighting(config, e) for e in range(10)] == [False] * 8 + [True] * 2
    assert all(reweighting(TrainConfig(epochs=10), e) for e in range(10))


@pytest.mark.parametrize("name", ["focal", "logit_adjusted", "ldam"])
def test_each_loss_trains_a_tiny_model(tmp_path, name) -> None:
    head = "cosine" if name == "ldam" else "linear"
    config = TrainConfig(
        model=ModelConfig(width=4, head=head), epochs=2, batch_size=16, device="cpu",
        precision="fp32", loss=LossConfig(name=name), class_weighting="effective_number",
        reweight_from=0.5, tta=False,
    )  # fmt: skip
    result = fit(config, tiny_dataset(), tmp_path / name, log=lambda _: None)
    assert all(np.isfinite(row["train/loss"]) for row in result.history)


@pytest.mark.parametrize(
    ("method", "expected"),
    [("focal", "focal"), ("logit_adjusted", "logit_adjusted"), ("ldam_drw", "ldam")],
)
def test_comparison_rows_of_the_imbalance_losses(tmp_path, method, expected) -> None:
    from ganpso.pipeline.config import RunConfig

    config = method_config(method, RunConfig(), tmp_path, seed=3)
    assert config.loss.name == expected and config.seed == 3
    if method == "ldam_drw":
        assert config.class_weighting == "effective_number" and config.reweight_from == 0.8
        assert config.model.head == "cosine"


def test_ldam_and_the_cosine_head_come_together() -> None:
    from ganpso.config import validate
    from ganpso.errors import ConfigError

    validate(TrainConfig(loss=LossConfig(name="ldam"), model=ModelConfig(head="cosine")), "t")
    with pytest.raises(ConfigError, match="ldam loss needs model.head: cosine"):
        validate(TrainConfig(loss=LossConfig(name="ldam")), "train")  # scaled linear logits
    with pytest.raises(ConfigError, match="cosine head needs loss ldam"):
        validate(TrainConfig(model=ModelConfig(head="cosine")), "train")


def test_the_cosine_head_gives_the_cosines_scikit_learn_computes() -> None:
    from sklearn.metrics.pairwise import cosine_similarity

    from ganpso.classifier.models import build_model

    model = build_model(ModelConfig(width=4, head="cosine", dropout=0.0)).eval()
    last = model.head[-1]
    features = torch.randn(5, last.weight.shape[1], generator=torch.Generator().manual_seed(1))
    expected = cosine_similarity(features.numpy(), last.weight.detach().numpy())
    np.testing.assert_allclose(last(features).detach().numpy(), expected, atol=1e-6)
    logits = model(torch.randn(3, 1, 40, 40))
    assert logits.shape == (3, 7) and logits.abs().max() <= 1 + 1e-6


def test_a_cells_recipe_counts_later_options_only_when_used() -> None:
    from ganpso.pipeline.compare import UNUSED_OPTIONS, recipe_fingerprint

    plain = TrainConfig(device="cpu", precision="fp32")
    for changed in (
        {"loss": LossConfig(name="focal")},
        {"mixup_alpha": 0.2},
        {"cutmix_alpha": 1.0},
        {"ema_decay": 0.9},
    ):
        assert recipe_fingerprint(plain) != recipe_fingerprint(
            TrainConfig(device="cpu", precision="fp32", **changed)  # type: ignore[arg-type]
        )
    assert set(UNUSED_OPTIONS) == {
        "ema_decay",
        "mixup_alpha",
        "cutmix_alpha",
        "loss",
        "reweight_from",
    }
