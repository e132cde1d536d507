"""The conditional GAN: network contracts, augmentation, training steps, checkpoints, metrics."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from scipy import linalg, ndimage

from factories import tiny_dataset
from ganpso.classifier import Preprocessing, build_model, save_classifier
from ganpso.classifier.config import ModelConfig, TrainConfig
from ganpso.cli import main
from ganpso.data.config import DataConfig
from ganpso.emotions import EMOTIONS
from ganpso.errors import CheckpointError, ConfigError
from ganpso.gan import (
    Discriminator,
    DivergenceError,
    GanTrainer,
    Generator,
    load_generator,
    synthesize,
)
from ganpso.gan.augment import AdaptiveStrength, augment, cutout, translate
from ganpso.gan.cas import mean_over_seeds
from ganpso.gan.checkpoint import load_discriminator, save_generator, write_generator
from ganpso.gan.config import GanConfig
from ganpso.gan.feature_scores import rare_class_ratios, ratios_over_draws
from ganpso.gan.guidance import ClassifierGuide, gaussian_blur
from ganpso.gan.loss import HingeLoss, mode_seeking_loss, paired_labels
from ganpso.gan.memorisation import discriminator_memorisation
from ganpso.gan.networks import STANDING_BATCH_SIZE, standing_statistics
from ganpso.gan.sample import from_uint8
from ganpso.metrics.distances import (
    fid_at_real_size,
    frechet_distance,
    kernel_inception_distance,
    nearest_distances,
    nearest_training_distances,
)


def tiny_config(**changes) -> GanConfig:
    values = {
        "data": DataConfig(source="synthetic", cache_dir=None),
        "z_dim": 16,
        "g_width": 4,
        "d_width": 4,
        "steps": 4,
        "batch_size": 8,
        "precision": "fp32",
        "device": "cpu",
        "log_every": 2,
        "sample_every": 2,
        "checkpoint_every": 2,
        "ema_start": 1,
        "standing_stats_batches": 0,  # the tests that want them set them
    }
    return GanConfig(**{**values, **changes})


def test_shapes_and_range_per_class() -> None:
    torch.manual_seed(0)
    G, D = Generator(z_dim=16, width=4), Discriminator(width=4)
    for label in range(len(EMOTIONS)):
        y = torch.full((3,), label)
        faces = G(torch.randn(3, 16), y)
        assert faces.shape == (3, 1, 48, 48)
        assert faces.min() >= -1 and faces.max() <= 1
        assert D(faces, y).shape == (3,)


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    G, D = Generator(z_dim=16, width=4), Discriminator(width=4)
    y = torch.arange(7)
    scores, logits = D.scores_and_logits(G(torch.randn(7, 16), y), y)
    (scores.mean() + torch.nn.functional.cross_entropy(logits, y)).backward()
    for name, parameter in [*G.named_parameters(), *D.named_parameters()]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_class_changes_the_face_from_the_first_step() -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=16, width=4).eval()
    z = torch.randn(1, 16).repeat(7, 1)
    faces = G(z, torch.arange(7))
    assert all(not torch.allclose(faces[0], faces[k]) for k in range(1, 7))


def test_auxiliary_class_loss_is_added_to_both_players() -> None:
    def losses(weight: float) -> tuple[float, float]:
        torch.manual_seed(0)
        G, D = Generator(z_dim=16, width=4), Discriminator(width=4)
        loss = HingeLoss(
            G,
            D,
            AdaptiveStrength(0.6, 1000),
            torch.device("cpu"),
            "fp32",
            torch.Generator().manual_seed(0),
            ac_weight=weight,
        )
        y, z = torch.arange(7), torch.randn(7, 16)
        real = torch.rand(7, 1, 48, 48) * 2 - 1
        d = loss.discriminator_phase(real, y, z).loss.item()
        return d, loss.generator_phase(y, z).loss.item()

    plain, with_class = losses(0.0), losses(1.0)
    assert with_class[0] > plain[0] and with_class[1] > plain[1]  # cross-entropy is positive


def test_guide_loss_is_the_classifiers_cross_entropy_on_a_crop_of_the_fakes(
    tiny_checkpoint,
) -> None:
    guide = ClassifierGuide(tiny_checkpoint, torch.device("cpu"), "fp32", torch.Generator())
    fakes = (torch.rand(7, 1, 48, 48) * 2 - 1).requires_grad_(True)
    labels = torch.arange(7)
    views = guide.views(fakes)
    assert views.shape == (7, 1, 40, 40)
    # the views are the fakes' pixels in the classifier's normalisation
    pixels = views.detach() * guide.preprocessing.pixel_std + guide.preprocessing.pixel_mean
    assert float(pixels.min()) >= 0 and float(pixels.max()) <= 1
    loss = guide.loss(fakes, labels)
    assert loss.item() > 0
    loss.backward()
    # the generator learns through the guide; the guide itself stays frozen
    assert fakes.grad is not None and fakes.grad.abs().sum() > 0
    assert all(p.grad is None for p in guide.model.parameters())


@pytest.mark.parametrize("sigma", [0.6, 1.0, 1.7])
def test_gaussian_blur_matches_scipy(sigma: float) -> None:
    images = torch.rand(2, 1, 12, 15, generator=torch.Generator().manual_seed(0))
    expected = [
        ndimage.gaussian_filter(image[0].numpy(), sigma, mode="mirror", truncate=3.0)
        for image in images
    ]
    blurred = gaussian_blur(images, sigma)
    assert blurred.shape == images.shape
    np.testing.assert_allclose(blurred[:, 0].numpy(), np.stack(expected), atol=1e-6)


def test_a_blurring_guide_does_not_see_a_checkerboard(tiny_checkpoint) -> None:
    rows, columns = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    checkerboard = (((rows + columns) % 2) * 2 - 1).float().expand(3, 1, 48, 48)
    flat = torch.zeros(3, 1, 48, 48)

    def views(blur_sigma: float, fakes: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)  # the same crops and mirrors each time
        guide = ClassifierGuide(
            tiny_checkpoint, torch.device("cpu"), "fp32", generator, blur_sigma=blur_sigma
        )
        return guide.views(fakes)

    assert (views(0.0, checkerboard) - views(0.0, flat)).abs().max() > 1
    assert (views(1.5, checkerboard) - views(1.5, flat)).abs().max() < 0.05


def test_guide_must_know_the_seven_emotions(tmp_path) -> None:
    config = ModelConfig(name="vgg_small", width=4, dropout=0.0)
    path = tmp_path / "two-classes.safetensors"
    model = build_model(config, num_classes=2)
    save_classifier(path, model, config, ("happy", "sad"), Preprocessing())
    with pytest.raises(ConfigError, match="two-classes.safetensors: the guide's classes"):
        ClassifierGuide(path, torch.device("cpu"), "fp32", torch.Generator())


def test_guidance_joins_the_generators_loss_only(tmp_path, tiny_checkpoint) -> None:
    with pytest.raises(ConfigError, match="guide_classifier is not"):
        GanTrainer(tiny_config(guide_weight=1.0), tmp_path / "unnamed")

    def losses(weight: float) -> tuple[float, float]:
        torch.manual_seed(0)
        trainer = GanTrainer(
            tiny_config(guide_weight=weight, guide_classifier=str(tiny_checkpoint)),
            tmp_path / f"w{weight}",
        )
        trainer.prepare_data(tiny_dataset()["Training"])
        stats = trainer.train_step()
        return stats["loss_d"], stats["loss_g"]

    plain, guided = losses(0.0), losses(5.0)
    assert guided[0] == pytest.approx(plain[0])  # D's step is the same
    assert guided[1] > plain[1] + 1  # G's loss gains 5 x a positive cross-entropy


def test_translate_and_cutout() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(6, 1, 48, 48) + 0.5  # strictly positive: zeros mark the fill
    assert torch.equal(translate(images, 0.0, generator), images)
    shifted = translate(images, 1.0, generator)
    assert shifted.shape == images.shape
    holes = cutout(images, 1.0, generator)
    zeros = (holes == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 24 * 24).all()


def test_augmentation_is_differentiable() -> None:
    images = torch.rand(4, 1, 48, 48, requires_grad=True)
    augment(images, 1.0, torch.Generator().manual_seed(0)).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_adaptive_strength_rises_when_d_is_sure_of_reals() -> None:
    strength = AdaptiveStrength(target=0.6, interval=2, speed_images=100)
    for _ in range(4):
        strength.update(torch.ones(10))
    assert strength.p > 0
    restored = AdaptiveStrength(target=0.6, interval=2, speed_images=100)
    restored.load_state_dict(strength.state_dict())
    assert restored.p == strength.p
    for _ in range(20):
        strength.update(-torch.ones(10))
    assert strength.p == 0


def test_mirror_flips_about_half_of_the_real_faces(tmp_path) -> None:
    split = tiny_dataset(per_class=3)["Training"]
    trainer = GanTrainer(tiny_config(mirror=True, batch_size=64), tmp_path, log=lambda _: None)
    trainer.prepare_data(split)
    originals = from_uint8(torch.from_numpy(split.images))
    real, _ = trainer.sample_batch()
    same = (real[:, None] == originals[None]).flatten(2).all(-1).any(1)
    flipped = (real[:, None] == originals.flip(-1)[None]).flatten(2).all(-1).any(1)
    assert bool((same | flipped).all())  # every face is a training face, as is or mirrored
    assert 16 < int((flipped & ~same).sum()) < 48


def test_augmentation_reaches_real_and_fake(tmp_path, monkeypatch) -> None:
    trainer = GanTrainer(tiny_config(augment_p=1.0), tmp_path, log=lambda _: None)
    trainer.prepare_data(tiny_dataset(per_class=3)["Training"])
    seen: list[torch.Tensor] = []
    original = trainer.D.scores_and_logits

    def spy(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(x.detach())
        return original(x, y)

    monkeypatch.setattr(trainer.D, "scores_and_logits", spy)
    real, labels = trainer.sample_batch()
    trainer.loss.discriminator_phase(real, labels, trainer.latent(len(labels)))
    trainer.loss.generator_phase(labels, trainer.latent(len(labels)))
    d_input, g_input = seen
    assert d_input.shape[0] == 2 * len(labels)  # reals and fakes in one pass
    assert not torch.allclose(d_input[: len(labels)], real)  # reals were augmented
    with torch.no_grad():
        assert (d_input[len(labels) :] == 0).any()  # cutout reached the fakes
    assert (g_input == 0).any()


def test_two_steps_finite_losses_and_outputs(tmp_path) -> None:
    trainer = GanTrainer(tiny_config(steps=2), tmp_path, log=lambda _: None)
    trainer.fit(tiny_dataset(per_class=3)["Training"])
    rows = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert rows and all(np.isfinite(rows[-1][k]) for k in ("gan/loss_d", "gan/loss_g"))
    for name in ("config.yaml", "gan.safetensors", "gan-state.pt", "generator.safetensors"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "samples" / "000002.png").is_file()


def test_resume_continues_from_the_saved_step(tmp_path) -> None:
    split = tiny_dataset(per_class=3)["Training"]
    whole = GanTrainer(tiny_config(steps=4), tmp_path / "whole", log=lambda _: None)
    whole.fit(split)
    first = GanTrainer(tiny_config(steps=2), tmp_path / "resumed", log=lambda _: None)
    first.fit(split)
    second = GanTrainer(tiny_config(steps=4), tmp_path / "resumed", log=lambda _: None)
    second.fit(split, resume=True)
    assert second.step == 4
    pairs = zip(whole.G_ema.state_dict().values(), second.G_ema.state_dict().values(), strict=True)
    for a, b in pairs:
        torch.testing.assert_close(a, b)


def test_snapshots_keep_the_generator_along_training_without_changing_it(tmp_path) -> None:
    split = tiny_dataset(per_class=3)["Training"]
    plain = GanTrainer(tiny_config(steps=4), tmp_path / "plain", log=lambda _: None)
    plain.fit(split)
    config = tiny_config(steps=4, snapshot_every=2, standing_stats_batches=1)
    kept = GanTrainer(config, tmp_path / "kept", log=lambda _: None)
    kept.fit(split)
    names = sorted(p.name for p in (tmp_path / "kept" / "snapshots").iterdir())
    assert names == ["generator-000002.safetensors", "generator-000004.safetensors"]
    _, header = load_generator(tmp_path / "kept" / "snapshots" / names[0])
    assert header["step"] == 2 and header["standing_stats_batches"] == 1
    pairs = zip(plain.G.state_dict().values(), kept.G.state_dict().values(), strict=True)
    for a, b in pairs:  # standing statistics run on a copy: training goes on unchanged
        torch.testing.assert_close(a, b)


def test_time_limit_counts_the_training_before_a_resume(tmp_path) -> None:
    split = tiny_dataset(per_class=3)["Training"]
    GanTrainer(tiny_config(steps=2), tmp_path, log=lambda _: None).fit(split)
    history = tmp_path / "history.jsonl"
    rows = [json.loads(line) for line in history.read_text().splitlines()]
    rows[-1]["seconds"] = 120.0  # as if the first session had trained for two minutes
    rows.append({**rows[-1], "step": 3})  # logged after the checkpoint, before a crash
    history.write_text("".join(json.dumps(row) + "\n" for row in rows))
    budget = tiny_config(steps=50, time_limit_minutes=1.0)  # one minute for the whole run
    resumed = GanTrainer(budget, tmp_path, log=lambda _: None)
    resumed.fit(split, resume=True)
    assert resumed.step == 3  # one step, then the limit (already spent) stops it
    steps = [json.loads(line)["step"] for line in history.read_text().splitlines()]
    assert steps == [2]  # the row past the checkpoint is gone, not logged twice
    assert GanConfig.from_yaml(tmp_path / "config.yaml").steps == 50  # the raised budget
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["steps"] == 3 and record["wall_seconds"] >= 120  # both sessions


def test_divergence_rolls_back_then_stops(tmp_path, monkeypatch) -> None:
    trainer = GanTrainer(tiny_config(steps=6, max_rollbacks=2), tmp_path, log=lambda _: None)
    split = tiny_dataset(per_class=3)["Training"]
    calls = {"n": 0}
    step = trainer.train_step

    def failing_after_two() -> dict[str, float]:
        calls["n"] += 1
        stats = step()
        return stats if calls["n"] <= 2 else {**stats, "loss_d": float("nan")}

    monkeypatch.setattr(trainer, "train_step", failing_after_two)
    with pytest.raises(DivergenceError, match="diverged at step 2"):
        trainer.fit(split)
    assert trainer.rollbacks == 3


def test_generator_save_load_same_samples(tmp_path) -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=16, width=4).eval()
    save_generator(tmp_path / "generator.safetensors", G, tiny_config(), step=7)
    loaded, header = load_generator(tmp_path)
    assert header["step"] == 7
    a, b = synthesize(G, 1, 5, seed=3), synthesize(loaded, 1, 5, seed=3)
    assert a.dtype == np.uint8 and a.shape == (5, 48, 48)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, synthesize(loaded, 1, 5, seed=4))


def test_a_bilinear_generator_keeps_its_upsampling_through_save_and_load(tmp_path) -> None:
    from ganpso.checkpoint import read_header
    from ganpso.gan.checkpoint import GENERATOR_FORMAT

    torch.manual_seed(0)
    G = Generator(z_dim=16, width=4, upsample="bilinear").eval()
    path = tmp_path / "generator.safetensors"
    save_generator(path, G, tiny_config(upsample="bilinear"), step=1)
    loaded, header = load_generator(tmp_path)
    assert header["upsample"] == loaded.upsample == "bilinear"
    np.testing.assert_array_equal(synthesize(G, 1, 4, seed=3), synthesize(loaded, 1, 4, seed=3))
    nearest = Generator(z_dim=16, width=4).eval()
    nearest.load_state_dict(G.state_dict())  # same weights, other resize: other faces
    assert not np.array_equal(synthesize(nearest, 1, 4, seed=3), synthesize(G, 1, 4, seed=3))
    # a generator saved before the option existed was nearest
    old = read_header(path, GENERATOR_FORMAT)
    del old["upsample"]
    write_generator(tmp_path / "old" / "generator.safetensors", G, old)
    assert load_generator(tmp_path / "old")[0].upsample == "nearest"


def test_standing_statistics_are_the_generators_own_batch_statistics() -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=16, width=4).eval()
    first_norm = G.blocks[0].norm1.norm  # normalises the stem's output
    with torch.no_grad():
        G.blocks[0].norm1.norm.running_mean.fill_(5.0)  # stale statistics, as an EMA has
    standing_statistics(G, batches=1, seed=3)
    rng = torch.Generator().manual_seed(3)  # the function's one batch, drawn again
    z = torch.randn(STANDING_BATCH_SIZE, 16, generator=rng)
    y = torch.randint(0, len(EMOTIONS), (STANDING_BATCH_SIZE,), generator=rng)
    with torch.no_grad():
        stem = G.stem(torch.cat([z, G.class_embed(y)], 1)).view(len(z), -1, 6, 6)
    torch.testing.assert_close(first_norm.running_mean, stem.mean((0, 2, 3)))
    torch.testing.assert_close(first_norm.running_var, stem.var((0, 2, 3), unbiased=True))
    assert not G.training and first_norm.momentum == pytest.approx(0.1)  # both restored


def test_saved_generator_gets_standing_statistics_and_training_keeps_its_own(tmp_path) -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=16, width=4).eval()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    saved = save_generator(tmp_path / "generator.safetensors", G, tiny_config(), 1, 2)
    for key, value in G.state_dict().items():
        torch.testing.assert_close(value, before[key])  # the trainer's copy is untouched
    loaded, header = load_generator(tmp_path)
    assert header["standing_stats_batches"] == 2
    means = "blocks.0.norm1.norm.running_mean"
    assert not torch.allclose(loaded.state_dict()[means], before[means])
    np.testing.assert_array_equal(synthesize(saved, 2, 4, 0), synthesize(loaded, 2, 4, 0))


def test_training_ends_with_standing_statistics_in_the_saved_generator(tmp_path) -> None:
    trainer = GanTrainer(
        tiny_config(steps=2, standing_stats_batches=1), tmp_path, log=lambda _: None
    )
    trainer.fit(tiny_dataset(per_class=3)["Training"])
    loaded, header = load_generator(tmp_path)
    assert header["standing_stats_batches"] == 1
    expected = copy.deepcopy(trainer.G_ema)
    standing_statistics(expected, 1, seed=trainer.config.seed)
    np.testing.assert_array_equal(synthesize(expected, 3, 4, 0), synthesize(loaded, 3, 4, 0))


def test_cli_standing_stats_rewrites_a_saved_generator(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    G = Generator(16, 4).eval()
    save_generator(tmp_path / "generator.safetensors", G, tiny_config(), 1)
    out = tmp_path / "restat.safetensors"
    assert main(["gan", "standing-stats", str(tmp_path), "--batches", "2", "--out", str(out)]) == 0
    loaded, header = load_generator(out)
    assert header["standing_stats_batches"] == 2 and header["step"] == 1
    standing_statistics(G, 2, seed=0)
    np.testing.assert_array_equal(synthesize(G, 1, 4, 0), synthesize(loaded, 1, 4, 0))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    assert main(["gan", "standing-stats", str(bad)]) == 2
    assert "bad.safetensors: not a ganpso safetensors checkpoint" in capsys.readouterr().err


def test_cli_sample_and_bad_checkpoint(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    save_generator(tmp_path / "generator.safetensors", Generator(16, 4).eval(), tiny_config(), 1)
    out = tmp_path / "faces"
    args = ["gan", "sample", str(tmp_path), "--class", "disgust", "--n", "3", "--out", str(out)]
    assert main([*args, "--seed", "5"]) == 0
    assert len(list(out.glob("disgust-seed5-*.png"))) == 3
    assert json.loads((out / "disgust-seed5.json").read_text())["seed"] == 5
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    assert main(["gan", "sample", str(bad), "--class", "happy", "--out", str(out)]) == 2
    assert "bad.safetensors: not a ganpso safetensors checkpoint" in capsys.readouterr().err


def test_frechet_distance_matches_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 6)), rng.normal(0.3, 1.5, size=(300, 6))
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.real(linalg.sqrtm(cov_a @ cov_b))
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)


def test_kid_near_zero_for_same_distribution() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    shifted = rng.normal(0.5, 1, size=(600, 8))
    same = kernel_inception_distance(a, b, subsets=20, subset_size=300)
    different = kernel_inception_distance(a, shifted, subsets=20, subset_size=300)
    assert abs(same) < 0.02 < different


def test_nearest_distances_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    queries = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    references = rng.integers(0, 256, (9, 48, 48), dtype=np.uint8)
    references[4] = queries[2]
    flat_q = queries.reshape(5, -1) / 255
    flat_r = references.reshape(9, -1) / 255
    expected = np.sqrt(((flat_q[:, None] - flat_r[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_distances(queries, references), expected, atol=1e-3)
    assert nearest_distances(queries, references)[2] == pytest.approx(0, abs=1e-3)


def test_a_mirrored_training_face_is_a_near_copy() -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    fakes = np.stack([train[3][:, ::-1], rng.integers(0, 256, (48, 48), dtype=np.uint8)])
    assert nearest_distances(fakes, train)[0] > 1  # missed without the mirrors
    distances = nearest_training_distances(fakes, train)
    assert distances[0] < 0.05 and distances[1] > 1  # float32 rounding leaves 0.02, not 0


def test_unknown_class_is_refused(tmp_path, capsys) -> None:
    args = ["gan", "sample", str(tmp_path), "--class", "bored", "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        main(args)
    assert "invalid choice: 'bored'" in capsys.readouterr().err


def test_gan_config_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        GanConfig.from_dict({"stepz": 3})


def test_cas_over_seeds_reports_mean_spread_and_each_seed() -> None:
    def run(accuracy: float, angry: float) -> dict:
        recall = dict.fromkeys(EMOTIONS, 0.5) | {"angry": angry}
        return {
            "accuracy": accuracy,
            "macro_f1": accuracy - 0.1,
            "accuracy_last_epoch": accuracy - 0.02,
            "best_epoch": 3,
            "per_class_recall": recall,
            "epochs": 12,
        }

    single = run(0.44, 0.1)
    assert mean_over_seeds([single]) is single
    summary = mean_over_seeds([run(0.44, 0.1), run(0.46, 0.6), run(0.48, 0.2)])
    assert summary["accuracy"] == 0.46 and summary["accuracy_per_seed"] == [0.44, 0.46, 0.48]
    assert summary["accuracy_std"] == 0.02 and summary["seeds"] == 3
    assert summary["per_class_recall"]["angry"] == 0.3 and summary["epochs"] == 12


def test_equal_real_size_removes_the_small_set_bias_of_fid() -> None:
    rng = np.random.default_rng(0)
    sizes = [800, 56, 800, 800, 800, 800, 800]  # disgust (label 1) has few real faces
    real = {k: rng.normal(size=(n, 16)) for k, n in enumerate(sizes)}
    fake = {k: rng.normal(size=(1000, 16)) for k in range(len(EMOTIONS))}  # all equally good
    ratios = rare_class_ratios(fake, real)
    assert ratios["fid_ratio"] > 1.5  # the small real set alone makes disgust look worse
    assert 0.7 < ratios["fid_ratio_equal_real_size"] < 1.4


def test_fid_at_real_size_uses_the_whole_set_when_it_is_small() -> None:
    rng = np.random.default_rng(1)
    fake, real = rng.normal(size=(200, 8)), rng.normal(size=(30, 8))
    assert fid_at_real_size(fake, real, 56, seed=0) == frechet_distance(fake, real)
    large = rng.normal(size=(300, 8))
    subsampled = fid_at_real_size(fake, large, 30, seed=0)
    assert subsampled == fid_at_real_size(fake, large, 30, seed=0)  # seeded subsets
    assert subsampled > frechet_distance(fake, large)  # 30 real faces: a larger estimate


def test_ratios_over_draws_judge_the_mean_and_keep_each_draw() -> None:
    draws = [
        {"fid_ratio": 2.2, "kid_ratio": 1.9, "fid_ratio_equal_real_size": 1.8},
        {"fid_ratio": 2.4, "kid_ratio": 2.1, "fid_ratio_equal_real_size": 2.0},
    ]
    summary = ratios_over_draws(draws)
    assert summary["fid_ratio"] == pytest.approx(2.3)
    assert summary["kid_ratio"] == pytest.approx(2.0)
    assert summary["std"]["fid_ratio"] == pytest.approx(0.141, abs=1e-3)
    assert summary["draws"] == 2 and summary["per_draw"][1]["kid_ratio"] == 2.1
    assert ratios_over_draws(draws[:1])["std"] is None


def test_discriminator_loads_from_the_training_checkpoint(tmp_path) -> None:
    trainer = GanTrainer(tiny_config(steps=2), tmp_path, log=lambda _: None)
    trainer.fit(tiny_dataset(per_class=3)["Training"])
    loaded = load_discriminator(tmp_path / "gan.safetensors")
    x, y = torch.rand(4, 1, 48, 48) * 2 - 1, torch.tensor([0, 1, 2, 3])
    torch.testing.assert_close(loaded(x, y), trainer.D.eval()(x, y))
    with pytest.raises(CheckpointError, match="generator.safetensors"):
        load_discriminator(tmp_path / "generator.safetensors")  # G alone has no discriminator


def test_discriminator_memorisation_is_the_gap_between_seen_and_unseen_faces() -> None:
    class BrightIsReal(torch.nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(1, 2, 3))

    seen = {k: np.full((4, 48, 48), 200, np.uint8) for k in range(len(EMOTIONS))}
    unseen = {**seen, 1: np.full((4, 48, 48), 20, np.uint8)}  # disgust: nothing like the seen
    report = discriminator_memorisation(BrightIsReal(), seen, unseen, torch.device("cpu"))
    assert report["disgust"] == {"r_t_training": 1.0, "r_t_publictest": -1.0, "gap": 2.0}
    assert report["happy"]["gap"] == 0.0


def test_truncated_latents_follow_scipys_truncated_normal() -> None:
    from scipy import stats

    from ganpso.gan.sample import latents

    rng = torch.Generator().manual_seed(0)
    z = latents(4000, 5, rng, truncation=1.5).numpy().ravel()
    assert np.abs(z).max() <= 1.5
    assert stats.kstest(z, stats.truncnorm(-1.5, 1.5).cdf).pvalue > 0.01
    plain = latents(3, 5, torch.Generator().manual_seed(1))
    assert torch.equal(plain, torch.randn(3, 5, generator=torch.Generator().manual_seed(1)))


def test_truncation_draws_typical_faces_and_keeps_candidates_prefix_stable() -> None:
    from ganpso.pipeline.balance import draw_candidates

    torch.manual_seed(0)
    generator = Generator(16, 4).eval()
    first = draw_candidates(generator, 1, 3, seed=0, truncation=0.5)
    assert np.array_equal(first, draw_candidates(generator, 1, 700, seed=0, truncation=0.5)[:3])
    assert not np.array_equal(first, draw_candidates(generator, 1, 3, seed=0))
    with pytest.raises(ConfigError, match="synthetic.truncation"):
        TrainConfig.from_dict({"synthetic": {"truncation": 0}})


def test_paired_labels_give_the_second_half_the_first_halfs_classes() -> None:
    assert paired_labels(torch.tensor([3, 1, 4, 1, 5])).tolist() == [3, 1, 3, 1, 5]
    assert paired_labels(torch.tensor([2, 6])).tolist() == [2, 2]


def test_mode_seeking_loss_is_the_inverse_gap_ratio_and_pushes_pairs_apart() -> None:
    generator = torch.Generator().manual_seed(0)
    fake = (torch.rand(6, 1, 4, 4, generator=generator) * 2 - 1).requires_grad_(True)
    z = torch.randn(6, 8, generator=generator)
    image_gap = np.abs(fake.detach().numpy()[:3] - fake.detach().numpy()[3:]).mean()
    latent_gap = np.abs(z.numpy()[:3] - z.numpy()[3:]).mean()
    loss = mode_seeking_loss(fake, z)
    assert loss.item() == pytest.approx(1 / (image_gap / latent_gap + 1e-5), rel=1e-5)
    loss.backward()
    # descending the loss moves each face away from its partner
    step = -fake.grad
    assert float((step[:3] * (fake[:3] - fake[3:]).detach()).sum()) > 0
    assert mode_seeking_loss(fake * 0.5, z).item() > loss.item()  # closer faces cost more


def test_diversity_term_joins_the_generators_loss_only() -> None:
    def losses(weight: float) -> tuple[float, float]:
        torch.manual_seed(0)
        G, D = Generator(z_dim=16, width=4), Discriminator(width=4)
        strength = AdaptiveStrength(0.6, 1000)
        rng = torch.Generator().manual_seed(0)
        loss = HingeLoss(G, D, strength, torch.device("cpu"), "fp32", rng, diversity_weight=weight)
        y, z = torch.tensor([0, 1, 2, 3, 4, 5]), torch.randn(6, 16)
        real = torch.rand(6, 1, 48, 48) * 2 - 1
        d = loss.discriminator_phase(real, y, z).loss.item()
        return d, loss.generator_phase(y, z).loss.item()

    plain, diverse = losses(0.0), losses(1.0)
    assert diverse[0] == plain[0]
    assert diverse[1] > plain[1]  # the term is positive


def test_training_with_the_diversity_term_runs(tmp_path) -> None:
    config = tiny_config(steps=2, diversity_weight=1.0, log_every=2)
    GanTrainer(config, tmp_path, log=lambda _: None).fit(tiny_dataset(per_class=3)["Training"])
    (row,) = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert np.isfinite(row["gan/loss_g"])
    with pytest.raises(ConfigError, match="diversity_weight"):
        GanTrainer(tiny_config(diversity_weight=-1.0), tmp_path / "bad", log=lambda _: None)


def test_r1_penalty_is_the_squared_gradient_norm_at_the_real_faces() -> None:
    class LinearCritic(torch.nn.Module):
        """D(x) = <w, x>: its gradient is w for every face, so R1 is ||w||^2."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(1, 1, 48, 48))

        def scores_and_logits(self, images, labels):
            return (images * self.w).sum(dim=(1, 2, 3)), torch.zeros(len(images), 7)

    critic = LinearCritic()
    strength = AdaptiveStrength(0.6, speed_images=100, p=0.0)  # no augmentation
    loss = HingeLoss(
        Generator(16, 4), critic, strength, torch.device("cpu"), "fp32", torch.Generator()
    )
    real = torch.rand(5, 1, 48, 48) * 2 - 1
    penalty = loss.r1_penalty(real, torch.zeros(5, dtype=torch.long))
    expected = float(critic.w.detach().square().sum())
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-5)
    penalty.backward()  # the penalty trains D: d||w||^2 / dw = 2w
    assert torch.allclose(critic.w.grad, 2 * critic.w.detach(), rtol=1e-5)


def test_r1_is_taken_every_few_steps_and_logged(tmp_path) -> None:
    config = tiny_config(steps=4, r1_gamma=1.0, r1_every=2, log_every=4)
    GanTrainer(config, tmp_path, log=lambda _: None).fit(tiny_dataset(per_class=3)["Training"])
    (row,) = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert row["gan/r1"] > 0 and np.isfinite(row["gan/loss_d"])
    with pytest.raises(ConfigError, match="r1_gamma"):
        GanTrainer(tiny_config(r1_gamma=-1.0), tmp_path / "bad", log=lambda _: None)
