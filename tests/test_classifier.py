import json

import numpy as np
import pytest
import torch

from factories import tiny_dataset
from ganpso.classifier import (
    Preprocessing,
    build_model,
    fit,
    list_models,
    load_classifier,
    predict_proba,
    save_classifier,
)
from ganpso.classifier.augment import (
    augment_batch,
    eval_views,
    normalize,
    random_affine,
    random_crop,
)
from ganpso.classifier.config import AugmentConfig, ModelConfig, TrainConfig
from ganpso.classifier.training import class_weights, epoch_order, load_state
from ganpso.emotions import EMOTIONS
from ganpso.errors import CheckpointError, ConfigError


def tiny_config(**changes) -> TrainConfig:
    config = TrainConfig(
        model=ModelConfig(width=4, dropout=0.0),
        epochs=2,
        batch_size=16,
        lr=0.05,
        precision="fp32",
        channels_last=False,
        tta=False,
        device="cpu",
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("size", [40, 48])
def test_every_model_maps_faces_to_logits(name: str, size: int) -> None:
    torch.manual_seed(0)  # a tiny gate's ReLU units can all start dead for some draws
    model = build_model(ModelConfig(name=name, width=4))
    logits = model(torch.randn(3, 1, size, size))
    assert logits.shape == (3, len(EMOTIONS))
    logits.sum().backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert missing == []


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="vgg_small"):
        build_model(ModelConfig(name="nope"))


def test_random_crop_takes_real_windows_and_is_seeded() -> None:
    images = torch.arange(2 * 48 * 48, dtype=torch.int64).reshape(2, 48, 48) % 251
    crops = random_crop(images.to(torch.uint8), 40, torch.Generator().manual_seed(1))
    again = random_crop(images.to(torch.uint8), 40, torch.Generator().manual_seed(1))
    assert torch.equal(crops, again)
    for image, crop in zip(images.to(torch.uint8), crops, strict=True):
        windows = [image[i : i + 40, j : j + 40] for i in range(9) for j in range(9)]
        assert any(torch.equal(crop, w) for w in windows)


def test_augment_batch_shape_and_range() -> None:
    images = torch.randint(0, 256, (5, 48, 48), dtype=torch.uint8)
    batch = augment_batch(images, AugmentConfig(), torch.Generator().manual_seed(0))
    assert batch.shape == (5, 1, 40, 40) and batch.dtype == torch.float32
    assert batch.abs().max() <= (1 - 0.5) / 0.25 + 1e-6


def test_eval_views_centre_and_corners() -> None:
    images = torch.randint(0, 256, (2, 48, 48), dtype=torch.uint8)
    assert len(eval_views(images, 40, tta=False)) == 2
    views = eval_views(images, 40, tta=True)
    assert len(views) == 10
    assert torch.equal(views[0], normalize(images)[:, :, 4:44, 4:44])
    assert torch.equal(views[1], views[0].flip(-1))


def test_eval_views_at_given_offsets_replace_the_default_crops() -> None:
    images = torch.randint(0, 256, (2, 48, 48), dtype=torch.uint8)
    views = eval_views(images, 40, tta=True, offsets=[(0, 8), (8, 0)])
    assert len(views) == 4
    assert torch.equal(views[0], normalize(images)[:, :, 0:40, 8:48])
    assert torch.equal(views[2], normalize(images)[:, :, 8:48, 0:40])
    assert torch.equal(views[3], views[2].flip(-1))


def test_class_weights_favour_rare_classes_and_keep_scale() -> None:
    labels = torch.tensor([0] * 90 + [1] * 10 + list(range(2, 7)) * 10)
    weights = class_weights(labels, "inverse")
    assert weights[1] > weights[0]
    counts = torch.bincount(labels, minlength=7).float()
    assert torch.isclose((weights * counts).sum(), counts.sum())
    assert class_weights(labels, "none") is None


def test_oversampling_balances_classes() -> None:
    labels = torch.tensor([0] * 900 + [1] * 30 + [2] * 70)
    order = epoch_order(labels, "oversample", torch.Generator().manual_seed(0))
    drawn = torch.bincount(labels[order], minlength=3).float() / len(order)
    assert torch.allclose(drawn, torch.full((3,), 1 / 3), atol=0.05)
    assert sorted(epoch_order(labels, "none", torch.Generator()).tolist()) == list(range(1000))


def test_fit_writes_an_auditable_run(tmp_path) -> None:
    result = fit(tiny_config(), tiny_dataset(), tmp_path / "run", log=lambda _: None)
    run = tmp_path / "run"
    for name in ("config.yaml", "history.jsonl", "best.safetensors", "state.pt", "curves.png"):
        assert (run / name).stat().st_size > 0, name
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(np.isfinite(r["train/loss"]) and 0 <= r["val/accuracy"] <= 1 for r in rows)
    assert result.best_epoch in (1, 2)


def test_fit_learns_a_separable_task(tmp_path) -> None:
    config = tiny_config(epochs=6, lr=0.1)
    result = fit(config, tiny_dataset(per_class=12), tmp_path / "run", log=lambda _: None)
    assert result.best_score > 0.5  # 7 classes: chance is 0.14


def test_save_load_gives_identical_outputs(tmp_path) -> None:
    model = build_model(ModelConfig(width=4)).eval()
    path = tmp_path / "m.safetensors"
    save_classifier(path, model, ModelConfig(width=4), EMOTIONS, Preprocessing(), {"note": 1})
    loaded = load_classifier(path)
    x = torch.randn(4, 1, 40, 40)
    assert torch.equal(model(x), loaded.model(x))
    assert loaded.classes == EMOTIONS and loaded.extra == {"note": 1}
    assert loaded.preprocessing.crop == 40


@pytest.mark.parametrize(
    "changes", [{}, {"ema_decay": 0.9, "mixup_alpha": 0.4}, {"cutmix_alpha": 1.0}]
)
def test_resume_equals_uninterrupted_training(tmp_path, changes) -> None:
    dataset = tiny_dataset()
    config = tiny_config(**changes)
    fit(config, dataset, tmp_path / "straight", log=lambda _: None)

    def crash_after_first_epoch(line: str) -> None:
        if line.startswith("epoch   1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, dataset, tmp_path / "resumed", log=crash_after_first_epoch)
    fit(config, dataset, tmp_path / "resumed", resume=True, log=lambda _: None)

    for key in ("model", "ema"):
        straight = load_state(tmp_path / "straight" / "state.pt")[key]
        resumed = load_state(tmp_path / "resumed" / "state.pt")[key]
        assert straight.keys() == resumed.keys()
        for name in straight:
            assert torch.equal(straight[name], resumed[name]), name

    def rows_without_time(run: str) -> list[dict]:
        lines = (tmp_path / run / "history.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]

    assert rows_without_time("resumed") == rows_without_time("straight")


def test_ema_weights_are_the_kept_ones(tmp_path) -> None:
    """With EMA the saved checkpoint holds the averaged weights, not the last trained ones."""
    fit(tiny_config(epochs=1, ema_decay=0.5), tiny_dataset(), tmp_path / "run", log=lambda _: None)
    state = load_state(tmp_path / "run" / "state.pt")
    kept = load_classifier(tmp_path / "run" / "best.safetensors").model.state_dict()
    averaged = {k.removeprefix("module."): v for k, v in state["ema"].items()}
    weight = "features.0.weight"
    assert torch.equal(kept[weight], averaged[weight].float())
    assert not torch.equal(kept[weight], state["model"][weight])


def test_mix_batch_blends_each_image_with_one_partner() -> None:
    from ganpso.classifier.augment import mix_batch

    batch = torch.arange(6, dtype=torch.float32).reshape(6, 1, 1, 1).expand(6, 1, 4, 4)
    mixed, partner, lam = mix_batch(batch, 0.4, torch.Generator().manual_seed(0))
    assert 0 <= lam <= 1 and sorted(partner.tolist()) == list(range(6))
    expected = lam * batch + (1 - lam) * batch[partner]
    torch.testing.assert_close(mixed, expected)
    again = mix_batch(batch, 0.4, torch.Generator().manual_seed(0))
    assert again[2] == lam and torch.equal(again[1], partner)


def test_cut_mix_pastes_one_rectangle_of_the_partner_and_counts_its_area() -> None:
    from ganpso.classifier.augment import cut_mix_batch

    # image i is the constant i, so a pixel tells which image it came from
    batch = torch.arange(6, dtype=torch.float32).reshape(6, 1, 1, 1).expand(6, 1, 8, 8)
    for seed in range(20):
        mixed, partner, lam = cut_mix_batch(batch, 1.0, torch.Generator().manual_seed(seed))
        assert sorted(partner.tolist()) == list(range(6))
        pasted = mixed[partner != torch.arange(6)] != batch[partner != torch.arange(6)]
        pasted = pasted[0, 0] if len(pasted) else torch.zeros(8, 8, dtype=torch.bool)
        for image in range(6):  # each image: itself outside one rectangle, its partner inside
            expected = torch.where(pasted, float(partner[image]), float(image))
            torch.testing.assert_close(mixed[image, 0], expected)
        rows, cols = pasted.any(1).nonzero(), pasted.any(0).nonzero()
        if len(rows):
            assert bool(pasted[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all())
        assert lam == pytest.approx(1 - float(pasted.float().mean()))
    again = cut_mix_batch(batch, 1.0, torch.Generator().manual_seed(19))
    assert again[2] == lam and torch.equal(again[0], mixed)


def test_mixup_and_cutmix_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="cutmix_alpha"):
        TrainConfig.from_dict({"mixup_alpha": 0.2, "cutmix_alpha": 1.0})


def test_mixup_loss_is_the_blend_of_both_targets_losses() -> None:
    from ganpso.classifier.losses import batch_loss

    logits = torch.randn(5, 7, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 2, 3, 4])
    partner = torch.tensor([4, 3, 2, 1, 0])
    one = batch_loss(logits, target, None, None, 0.0)
    assert torch.isclose(one, torch.nn.functional.cross_entropy(logits, target))
    soft = 0.3 * torch.nn.functional.one_hot(target, 7) + 0.7 * torch.nn.functional.one_hot(
        target[partner], 7
    )
    blended = 0.3 * one + 0.7 * batch_loss(logits, target[partner], None, None, 0.0)
    assert torch.isclose(blended, torch.nn.functional.cross_entropy(logits, soft.float()))


def test_fit_refuses_to_overwrite_a_run(tmp_path) -> None:
    fit(tiny_config(epochs=1), tiny_dataset(), tmp_path / "run", log=lambda _: None)
    with pytest.raises(ConfigError, match="already holds"):
        fit(tiny_config(epochs=1), tiny_dataset(), tmp_path / "run", log=lambda _: None)


def test_predict_proba_rows_sum_to_one() -> None:
    model = build_model(ModelConfig(width=4))
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    probs = predict_proba(model, images, crop=40, tta=True, device=torch.device("cpu"))
    assert probs.shape == (5, 7)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "checkpoint not found"),
        (b"", "not a ganpso safetensors checkpoint"),
        (
            b"\x10\x00\x00\x00\x00\x00\x00\x00garbage-garbage!",
            "not a ganpso safetensors checkpoint",
        ),
    ],
)
def test_bad_checkpoints_fail_in_one_line(tmp_path, content, message) -> None:
    path = tmp_path / "bad.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_classifier(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_and_tampered_checkpoints_are_refused(tmp_path) -> None:
    path = tmp_path / "m.safetensors"
    save_classifier(
        path, build_model(ModelConfig(width=4)), ModelConfig(width=4), EMOTIONS, Preprocessing()
    )
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_classifier(tmp_path / "cut.safetensors")
    tampered = data.replace(b'\\"width\\": 4', b'\\"width\\": 8')
    assert tampered != data
    (tmp_path / "tampered.safetensors").write_bytes(tampered)
    with pytest.raises(CheckpointError, match="do not match"):
        load_classifier(tmp_path / "tampered.safetensors")


def test_resume_state_never_unpickles_code(tmp_path) -> None:
    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pwned')",))

    path = tmp_path / "state.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot resume"):
        load_state(path)


def test_random_affine_matches_opencvs_rotation_and_zoom() -> None:
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (48, 48)).astype(np.float32), (7, 7), 2)
    draws = torch.rand(2, 1, generator=torch.Generator().manual_seed(3)) * 2 - 1
    angle, zoom = float(draws[0, 0]) * 20, 1 + float(draws[1, 0]) * 0.15
    warped = random_affine(
        torch.from_numpy(image)[None], 20, 0.15, torch.Generator().manual_seed(3)
    )
    matrix = cv2.getRotationMatrix2D((23.5, 23.5), angle, zoom)  # positive: counter-clockwise
    expected = cv2.warpAffine(
        image, matrix, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    assert abs(angle) > 5 and abs(zoom - 1) > 0.05  # the draw really turns and zooms
    np.testing.assert_allclose(warped[0].numpy(), expected, atol=0.5)


def test_augment_batch_rotates_only_when_asked() -> None:
    images = torch.randint(0, 256, (4, 48, 48), dtype=torch.uint8)
    plain = AugmentConfig(flip=False, erase_prob=0.0)
    turned = AugmentConfig(flip=False, erase_prob=0.0, rotate_deg=15, scale=0.1)
    first = augment_batch(images, plain, torch.Generator().manual_seed(0))
    assert torch.equal(first, augment_batch(images, plain, torch.Generator().manual_seed(0)))
    again = augment_batch(images, turned, torch.Generator().manual_seed(0))
    assert again.shape == first.shape and not torch.allclose(again, first)
    assert torch.equal(again, augment_batch(images, turned, torch.Generator().manual_seed(0)))
