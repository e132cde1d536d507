"""Judging a generator by numbers, with nothing downloaded (no Inception weights exist here).

- FID and KID on the penultimate features (256-d) of a FER classifier trained on real Training
  images, per class and overall, fake vs PublicTest; a Training subset vs PublicTest beside it
  is the floor that real data reaches with the same sample sizes.
- CAS (classification accuracy score, ``ganpso.gan.cas``): a classifier trained on fakes only,
  scored on PublicTest, beside the same recipe trained on real Training images.
- Memorisation (``ganpso.gan.memorisation``): the share of fakes that are near-copies of a
  Training face, and, when the run's ``gan.safetensors`` is at hand, how much surer D is of
  the Training faces than of unseen PublicTest faces, per class.
- Diversity: mean pairwise feature distance of fakes over that of real Training images, per
  class (near 1: as varied as the data; far below: mode collapse).
- Artefacts (``ganpso.metrics.spectrum``): the fakes' power at high spatial frequencies over
  real Training faces', per class and overall (1: the data's texture; above: grid or streaks).
- Disgust against the other classes: its FID and KID over their mean, averaged over several
  draws of fakes (a single draw moves the ratios), and FID again with every class scored
  against real sets of disgust's size (FID's estimate grows as a set shrinks).

This module draws the faces, extracts the classifier's features and assembles
``gan-metrics.json``; the scores on those features are in ``ganpso.gan.feature_scores``, the
distances themselves (plain math) in ``ganpso.metrics.distances``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganpso.classifier.augment import eval_views
from ganpso.classifier.checkpoint import ClassifierCheckpoint, load_classifier
from ganpso.data import Split, load_dataset
from ganpso.data.config import DataConfig
from ganpso.device import describe_device, resolve_device
from ganpso.emotions import EMOTIONS
from ganpso.gan.cas import classification_accuracy_score, mean_over_seeds
from ganpso.gan.checkpoint import load_discriminator, load_generator
from ganpso.gan.feature_scores import (
    CLASSES,
    distribution_scores,
    diversity_ratios,
    fid_excess_ratio,
    rare_class_ratios,
    ratios_over_draws,
    real_faces_reference,
)
from ganpso.gan.memorisation import discriminator_memorisation, pixel_memorisation
from ganpso.gan.networks import Generator
from ganpso.gan.sample import synthesize
from ganpso.metrics.distances import EQUAL_SIZE_REPEATS
from ganpso.metrics.spectrum import grid_peak_ratio, high_frequency_ratio

ClassImages = dict[int, np.ndarray]  # class index -> images (n, 48, 48) or features (n, d)
Features = Callable[[ClassImages], ClassImages]
DrawFakes = Callable[[int, int], ClassImages]  # (count per class, seed) -> fakes per class

DISCRIMINATOR_FACES = 1000  # Training faces per class on which D's r_t is measured


# -- faces and their features ----------------------------------------------------------------
def draw_fakes(
    generator: Generator, count: int, seed: int, truncation: float | None = None
) -> ClassImages:
    """``count`` fakes of every class; class ``k`` drawn with seed ``seed + k``."""
    return {
        k: synthesize(generator, k, count, seed=seed + k, truncation=truncation) for k in CLASSES
    }


def class_subset(split: Split, label: int, count: int, seed: int) -> np.ndarray:
    """Up to ``count`` random images of class ``label`` (seeded)."""
    indices = np.flatnonzero(split.labels == label)
    rng = np.random.default_rng(seed)
    return split.images[rng.permutation(indices)[:count]]


def stack_classes(images: ClassImages) -> tuple[np.ndarray, np.ndarray]:
    """Images per class as one array of images and one of labels."""
    labels = np.concatenate([np.full(len(v), k) for k, v in images.items()])
    return np.concatenate(list(images.values())), labels


@torch.no_grad()
def classifier_features(
    model: torch.nn.Module, faces: np.ndarray, crop: int, device: torch.device
) -> np.ndarray:
    """Pooled penultimate features ``(N, C)`` of the centre crop (fp32 for stable statistics)."""
    model.eval()
    chunks = []
    for start in range(0, len(faces), 512):
        batch = torch.from_numpy(faces[start : start + 512]).to(device)
        batch = eval_views(batch, crop, tta=False)[0]  # the centre crop, as evaluation sees it
        chunks.append(model.head[:-1](model.features(batch)).float().cpu().numpy())
    return np.concatenate(chunks).astype(np.float64)


def feature_extractor(checkpoint: ClassifierCheckpoint, device: torch.device) -> Features:
    """A function from images per class to the classifier's features per class."""
    crop = checkpoint.preprocessing.crop

    def features(images: ClassImages) -> ClassImages:
        return {
            k: classifier_features(checkpoint.model, v, crop, device) for k, v in images.items()
        }

    return features


# -- scores on the features ------------------------------------------------------------------
def disgust_ratios(
    draw: DrawFakes,
    features: Features,
    first: tuple[ClassImages, ClassImages, ClassImages],
    per_class: int,
    draws: int,
    seed: int,
) -> dict[str, Any]:
    """``rare_class_ratios`` over ``draws`` draws of fakes, the ``first`` (fake, floor, real
    features) being the per-class table's, with the real-faces reference beside them."""
    fake_f, floor_f, real_f = first
    ratios = [rare_class_ratios(fake_f, real_f, seed)]
    for index in range(1, draws):
        more = draw(per_class, seed + 1000 * index)
        ratios.append(rare_class_ratios(features(more), real_f, seed))
    summary = ratios_over_draws(ratios)
    summary["real_faces_reference"] = real_faces_reference(floor_f, real_f, seed)
    return summary


def score_features(
    draw: DrawFakes,
    features: Features,
    images: tuple[ClassImages, ClassImages, ClassImages],
    ratio_draws: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """FID/KID, disgust's ratios and diversity from the (fake, floor, real) ``images``."""
    fakes, floors, reals = images
    fake_f, floor_f, real_f = features(fakes), features(floors), features(reals)
    scores = distribution_scores(fake_f, floor_f, real_f)
    ratios = disgust_ratios(
        draw, features, (fake_f, floor_f, real_f), len(fakes[0]), ratio_draws, seed
    )
    return scores, ratios, diversity_ratios(fake_f, floor_f)


# -- memorisation ------------------------------------------------------------------------------
def memorisation_scores(
    checkpoint: Path,
    fakes: ClassImages,
    train: Split,
    public: Split,
    device: torch.device,
    seed: int,
) -> dict[str, Any]:
    """Near-copies among ``fakes``; D's ``r_t`` gap too when the training ``checkpoint``
    (``gan.safetensors``, which holds D) exists."""
    memorisation = pixel_memorisation(*stack_classes(fakes), train.images, public.images)
    if checkpoint.is_file():
        seen = {k: class_subset(train, k, DISCRIMINATOR_FACES, seed) for k in CLASSES}
        unseen = {k: public.images[public.labels == k] for k in CLASSES}
        memorisation["discriminator"] = discriminator_memorisation(
            load_discriminator(checkpoint, device), seen, unseen, device
        )
    return memorisation


def artefact_scores(fakes: ClassImages, reals: ClassImages) -> dict[str, Any]:
    """High-frequency and grid power of the fakes over real Training faces' (``spectrum``)."""
    per_class = {EMOTIONS[k]: high_frequency_ratio(fakes[k], reals[k]) for k in CLASSES}
    every_fake, every_real = (np.concatenate([d[k] for k in CLASSES]) for d in (fakes, reals))
    grid_peak, frequency = grid_peak_ratio(every_fake, every_real)
    return {
        "high_frequency_ratio": high_frequency_ratio(every_fake, every_real),
        "per_class": per_class,
        "grid_peak_ratio": grid_peak,
        "grid_peak_frequency": list(frequency),
        "definition": "high_frequency_ratio: mean power at spatial frequencies from half the "
        "Nyquist radius up (corners included), fakes over as many real Training faces per "
        "class; 1: the data's texture, above: grid or streak artefacts, below: blur. "
        "grid_peak_ratio: the largest fakes-over-real power ratio at the frequencies of a 2- or "
        "4-pixel grid (cycles per 48 px, (row, column))",
    }


def classifier_file(path: Path) -> Path:
    """A classifier run folder's ``best.safetensors``, or the given checkpoint itself."""
    return path / "best.safetensors" if path.is_dir() else path


def training_checkpoint(generator_path: Path) -> Path:
    """The run's ``gan.safetensors`` (G, its average and D) beside the given generator."""
    folder = generator_path if generator_path.is_dir() else generator_path.parent
    return folder / "gan.safetensors"


# -- CAS ---------------------------------------------------------------------------------------
def cas_scores(
    draw: DrawFakes,
    train: Split,
    public: Split,
    *,
    epochs: int,
    per_class: int | None,
    seeds: int,
    device: str,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """CAS over ``seeds`` classifier seeds and the real-data reference (one seed)."""
    count = per_class or len(train.labels) // len(EMOTIONS)
    fake_set = stack_classes(draw(count, seed))
    real_set = stack_classes({k: class_subset(train, k, count, seed) for k in CLASSES})
    cas = mean_over_seeds(
        [
            classification_accuracy_score(*fake_set, public, epochs, device, seed=seed + k)
            for k in range(seeds)
        ]
    )
    return cas, classification_accuracy_score(*real_set, public, epochs, device, seed=seed)


# -- the stage ---------------------------------------------------------------------------------
def evaluate_generator(
    generator_path: Path,
    classifier_path: Path,
    data: str,
    *,
    per_class: int = 1000,
    cas_epochs: int = 12,
    cas_per_class: int | None = None,
    cas_seeds: int = 1,
    ratio_draws: int = 1,
    device: str = "auto",
    command: str = "",
    seed: int = 0,
    truncation: float | None = None,
) -> dict[str, Any]:
    """Every number above for one generator, as a JSON-able report with a one-line summary.

    ``truncation``: every fake is drawn from latents truncated at that many standard
    deviations, as ``synthetic.truncation`` draws them for training (None: untruncated).

    ``per_class`` fakes per class serve FID/KID, near-copies and diversity; ``cas_per_class``
    (default: Training's size over the number of classes) serve CAS, trained ``cas_seeds`` times
    with different classifier seeds and averaged (the real-data reference once). Disgust's
    ratios are averaged over ``ratio_draws`` draws of ``per_class`` fakes, the first being the
    one that the per-class table shows.

    Example:
        >>> run = Path("runs/default")
        >>> report = evaluate_generator(run / "gan", run / "classifier", "fer2013.zip")
        >>> report["summary"]  # doctest: +SKIP
    """
    started = time.perf_counter()
    torch_device = resolve_device(device)
    generator, header = load_generator(generator_path, torch_device)
    features = feature_extractor(
        load_classifier(classifier_file(classifier_path), torch_device), torch_device
    )
    dataset = load_dataset(DataConfig(source=data))
    train, public = dataset["Training"], dataset["PublicTest"]
    draw = partial(draw_fakes, generator, truncation=truncation)
    fakes = draw(per_class, seed)
    floors = {k: class_subset(train, k, per_class, seed) for k in CLASSES}
    reals = {k: public.images[public.labels == k] for k in CLASSES}
    scores, ratios, diversity = score_features(
        draw, features, (fakes, floors, reals), ratio_draws, seed
    )
    cas, cas_real = cas_scores(
        draw,
        train,
        public,
        epochs=cas_epochs,
        per_class=cas_per_class,
        seeds=cas_seeds,
        device=device,
        seed=seed,
    )
    memorisation = memorisation_scores(
        training_checkpoint(generator_path), fakes, train, public, torch_device, seed
    )
    artefacts = artefact_scores(fakes, floors)
    context = {
        "generator": str(generator_path),
        "classifier": str(classifier_path),
        "fakes_per_class": per_class,
        "truncation": truncation,
        "device": describe_device(torch_device),
        "seconds": round(time.perf_counter() - started, 1),
        "command": command,
    }
    measured = (scores, ratios, cas, cas_real, memorisation, diversity, artefacts)
    return build_report(*measured, header, context)


# -- the report --------------------------------------------------------------------------------
def build_report(
    scores: dict[str, Any],
    ratios: dict[str, Any],
    cas: dict[str, Any],
    cas_real: dict[str, Any],
    memorisation: dict[str, Any],
    diversity: dict[str, float],
    artefacts: dict[str, Any],
    header: dict[str, Any],
    context: dict[str, Any],
) -> dict[str, Any]:
    """``gan-metrics.json``: the scores, the targets they meet and a one-line summary."""
    excess_ratio = fid_excess_ratio(scores["per_class"])
    return {
        "generator_step": header.get("step"),
        "features": "penultimate layer (global average pool) of the real-data classifier",
        "fid_kid": scores,
        "cas": cas,
        "cas_real_reference": cas_real,
        "memorisation": memorisation,
        "diversity_ratio_fake_over_real": diversity,
        "artefacts": artefacts,
        "disgust_vs_other_classes": {
            **ratios,
            "fid_excess_over_floor_ratio": round(float(excess_ratio), 3),
            "definition": "disgust's FID (KID) over the mean of the other six classes', each "
            f"fake set ({context['fakes_per_class']} per class) against PublicTest; mean of "
            f"{ratios['draws']} draws of fakes (the first is the per-class table's); "
            "fid_ratio_equal_real_size: every class against random real subsets of disgust's "
            f"size ({EQUAL_SIZE_REPEATS} per class, FID averaged); fid_excess_over_floor_ratio: "
            "FID minus the class's real-vs-real floor, first draw; real_faces_reference: the "
            "same ratios with real Training faces (as many per class as disgust has) in place "
            "of fakes",
        },
        "targets_met": targets_met(ratios, cas, memorisation),
        "summary": summary_line(scores, ratios, cas, cas_real, memorisation),
        **context,
    }


def targets_met(
    ratios: dict[str, Any], cas: dict[str, Any], memorisation: dict[str, Any]
) -> dict[str, bool]:
    return {
        "cas_accuracy_at_least_0.45": cas["accuracy"] >= 0.45,
        "disgust_kid_within_2x_of_other_classes_mean": bool(ratios["kid_ratio"] <= 2),
        "disgust_fid_within_2x_of_other_classes_mean": bool(ratios["fid_ratio"] <= 2),
        "near_copy_fraction_at_most_0.01": memorisation["near_copy_fraction"] <= 0.01,
    }


def summary_line(
    scores: dict[str, Any],
    ratios: dict[str, Any],
    cas: dict[str, Any],
    cas_real: dict[str, Any],
    memorisation: dict[str, Any],
) -> str:
    overall = scores["overall"]
    spread = f" +- {cas['accuracy_std']:.3f}, {cas['seeds']} seeds" if "seeds" in cas else ""
    return (
        f"FID {overall['fid']:.2f} (floor {overall['fid_floor']:.2f}), "
        f"KID {overall['kid']:.4f} (floor {overall['kid_floor']:.4f}); "
        f"CAS {cas['accuracy']:.3f}{spread} (real-data recipe {cas_real['accuracy']:.3f}); "
        f"near-copies {memorisation['near_copy_fraction']:.2%}; "
        f"disgust FID/KID vs others {ratios['fid_ratio']:.2f}x/{ratios['kid_ratio']:.2f}x"
        f" (mean of {ratios['draws']} draws; FID at equal real size "
        f"{ratios['fid_ratio_equal_real_size']:.2f}x)"
    )
