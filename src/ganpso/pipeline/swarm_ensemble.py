"""The swarm as a population of trained models: a weighted ensemble of the rescored particles.

The search's rescoring trains its best few settings and the base recipe in full
(``pipeline.rescore``), so a run ends with several finished classifiers, not one. The
``ensemble`` stage averages their class probabilities with weights chosen on PublicTest by
greedy forward selection with replacement (Caruana et al., 2004): it starts from the member with
the best PublicTest fitness (the search's weights of the five measures) and each round adds the
member, possibly again, whose addition gives the best fitness; a member's weight is the share of
rounds that picked it, so a member that never helps weighs 0 and costs nothing at inference.
Only then is the ensemble evaluated, once, on PrivateTest, like the final model.

    RUN/ensemble/ensemble.json            members (folder, weight, PublicTest fitness), rounds
    RUN/ensemble/metrics-PublicTest.json  the weighted ensemble on PublicTest
    RUN/ensemble/metrics-PrivateTest.json and predictions-PrivateTest.npz: the one evaluation

The comparison's ``ganpso_swarm_ensemble`` row is this ensemble; it meets the seed ensembles of
the baselines, whose size (GAN-PSO's seed count) the profiles' ``rescore_top_k`` + 1 does not
exceed, so it never costs more at inference than the ensembles it is compared with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.classifier.checkpoint import load_classifier
from ganpso.classifier.config import TrainConfig
from ganpso.classifier.evaluation import write_evaluation, write_predictions
from ganpso.classifier.training import predict_proba
from ganpso.data import FerDataset
from ganpso.device import describe_device, resolve_device
from ganpso.errors import ConfigError
from ganpso.files import write_json_atomic
from ganpso.metrics import build_metrics_report, classification_metrics, read_json
from ganpso.metrics.fitness import fitness, measures_of
from ganpso.pipeline.evaluation import CHECKPOINT_FILE
from ganpso.pipeline.folders import CONFIG_FILE, PRIVATE_METRICS_FILE
from ganpso.pipeline.rescore import RESCORE_DIR, RESCORE_FILE

ENSEMBLE_FILE = "ensemble.json"
ROUNDS_PER_MEMBER = 2  # selection rounds per candidate: enough for weights in steps of 1/(2k)


def rescored_members(search_dir: Path) -> list[Path]:
    """The finished full trainings of a search's rescoring, best full-training fitness first."""
    path = search_dir / RESCORE_FILE
    if not path.exists():
        return []
    rows = [row for row in read_json(path)["candidates"] if row.get("full") is not None]
    rows.sort(key=lambda row: -row["full"])
    return [member_folder(search_dir, row) for row in rows]


def member_folder(search_dir: Path, row: dict[str, Any]) -> Path:
    """Where a rescored candidate's training is: the recorded path is relative to where the run
    ran, so a run folder moved since is searched by its own layout (``rescore/<name>`` or, for a
    training the rescoring reused, the run's folder of that name)."""
    recorded = Path(row.get("folder") or search_dir / RESCORE_DIR / row["name"])
    for folder in (
        recorded,
        search_dir / RESCORE_DIR / row["name"],
        search_dir.parent / recorded.name,
    ):
        if all((folder / name).exists() for name in (CHECKPOINT_FILE, CONFIG_FILE)):
            return folder
    raise ConfigError(
        f"{search_dir / RESCORE_FILE}: candidate {row['name']}'s training {recorded} has no "
        f"{CHECKPOINT_FILE} (checkpoints stay where the run ran)"
    )


def member_probabilities(folder: Path, images: np.ndarray, device: str) -> np.ndarray:
    """``(N, K)`` class probabilities of the classifier in ``folder``, with its recipe's views."""
    config = TrainConfig.from_yaml(folder / CONFIG_FILE)
    torch_device = resolve_device(device)
    checkpoint = load_classifier(folder / CHECKPOINT_FILE, torch_device)
    return predict_proba(
        checkpoint.model,
        images,
        crop=checkpoint.preprocessing.crop,
        tta=config.tta,
        device=torch_device,
        precision=config.precision,
    )


def probability_fitness(
    probabilities: np.ndarray, labels: np.ndarray, weights: Mapping[str, float]
) -> float:
    """The fitness of the argmax predictions of ``(N, K)`` probabilities."""
    scores = classification_metrics(labels, probabilities.argmax(1))
    return fitness(measures_of(scores), weights)


def greedy_weights(
    probabilities: Sequence[np.ndarray],
    labels: np.ndarray,
    weights: Mapping[str, float],
    rounds: int,
) -> np.ndarray:
    """Ensemble selection with replacement: each member's share of ``rounds`` picks.

    The first pick is the best single member; each later pick adds the member that maximises
    the fitness of the running mean. A tie goes to a member already picked (it costs nothing
    more at inference), then to the earlier one, so the result is determined by the inputs.
    """
    if not probabilities:
        raise ConfigError("ensemble selection needs at least one member")
    counts = np.zeros(len(probabilities), dtype=np.int64)
    total = np.zeros_like(probabilities[0], dtype=np.float64)
    for _ in range(max(rounds, 1)):
        # the argmax of a mean is the argmax of the sum, so running sums suffice
        scores = [
            (probability_fitness(total + p, labels, weights), counts[i] > 0, -i)
            for i, p in enumerate(probabilities)
        ]
        best = -max(scores)[2]
        counts[best] += 1
        total += probabilities[best]
    return counts / counts.sum()


def weighted_probabilities(probabilities: Sequence[np.ndarray], shares: np.ndarray) -> np.ndarray:
    return np.sum([share * p for share, p in zip(shares, probabilities, strict=True)], axis=0)


def build_swarm_ensemble(
    search_dir: Path,
    out: Path,
    dataset: FerDataset,
    *,
    weights: Mapping[str, float],
    device: str,
    command: str,
    log: Callable[[str], None] = print,
) -> dict[str, Any] | None:
    """Choose the members' weights on PublicTest, then evaluate PrivateTest once.

    Returns the ensemble record, or None when the search rescored fewer than two trainings.
    """
    members = rescored_members(search_dir)
    out.mkdir(parents=True, exist_ok=True)
    if len(members) < 2:
        log(f"ensemble: the search rescored {len(members)} training(s); no ensemble to build")
        record = {"members": [], "note": "the search rescored fewer than two trainings"}
        write_json_atomic(record, out / ENSEMBLE_FILE)
        return None
    if (out / PRIVATE_METRICS_FILE).exists():
        raise ConfigError(f"{out}: PrivateTest was already evaluated; it is touched once")
    started = time.perf_counter()
    public = dataset["PublicTest"]
    public_probs = [member_probabilities(m, public.images, device) for m in members]
    rounds = ROUNDS_PER_MEMBER * len(members)
    shares = greedy_weights(public_probs, public.labels, weights, rounds)
    ensemble_public = weighted_probabilities(public_probs, shares)
    record = {
        "members": [
            {
                "folder": str(folder),
                "weight": round(float(share), 6),
                "public_fitness": probability_fitness(probs, public.labels, weights),
            }
            for folder, share, probs in zip(members, shares, public_probs, strict=True)
        ],
        "rounds": rounds,
        "fitness_weights": dict(weights),
        "public_fitness": probability_fitness(ensemble_public, public.labels, weights),
        "chosen_on": "PublicTest",
    }
    write_json_atomic(record, out / ENSEMBLE_FILE)
    shown = ", ".join(f"{Path(m['folder']).name} {m['weight']:.2f}" for m in record["members"])
    log(f"ensemble: weights {shown}; PublicTest fitness {record['public_fitness']:.4f}")
    where = describe_device(resolve_device(device))
    report = dict(split="PublicTest", device=where, command=command)
    seconds = time.perf_counter() - started
    write_evaluation(
        build_metrics_report(public.labels, ensemble_public.argmax(1), seconds=seconds, **report),
        out,
    )
    private = dataset["PrivateTest"]  # read only now that the weights are fixed
    started = time.perf_counter()
    used = [(m, s) for m, s in zip(members, shares, strict=True) if s > 0]
    probs = weighted_probabilities(
        [member_probabilities(m, private.images, device) for m, _ in used],
        np.array([s for _, s in used]),
    )
    seconds = time.perf_counter() - started
    report["split"] = "PrivateTest"
    write_predictions(out, private.labels, probs.argmax(1), probs)
    write_evaluation(
        build_metrics_report(private.labels, probs.argmax(1), seconds=seconds, **report), out
    )
    return record
