"""Multi-fidelity: the search's best settings trained again with the full recipe before choosing.

A search that maximises a reduced-fidelity fitness picks the settings that fitness overrates
most (how far it agrees with full training: ``benchmarks/fidelity_agreement.py``). So after the
search the ``rescore_top_k`` best distinct settings, and the base recipe itself
(``rescore_base``), are each trained exactly as the final stage trains (all of Training, the full
model and epochs, the recipe's seed, the kept PublicTest epoch), and the candidate with the best
PublicTest fitness (the search's weights of the five measures) at its kept epoch wins. The
search's ranking thus only decides which settings reach full training; full training decides
among them.

Each candidate trains in ``rescore/<name>/`` (resumable after a crash, like any training) through
the search's executor; ``rescore.json`` lists every candidate with both fitness values. The final
stage reuses the winner's folder instead of training it again. PrivateTest is never loaded.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ganpso.classifier.config import SyntheticConfig, TrainConfig
from ganpso.data import load_dataset
from ganpso.errors import ConfigError
from ganpso.files import read_jsonl, write_json_atomic
from ganpso.metrics import read_json
from ganpso.metrics.fitness import DEFAULT_WEIGHTS
from ganpso.pipeline.folders import replaced_folder
from ganpso.pipeline.objective import (
    missing_measures,
    row_fitness,
    search_dataset,
    settings_config,
)
from ganpso.pipeline.training import train_classifier
from ganpso.search.executors import Executor, Outcome
from ganpso.search.runner import settings_key

RESCORE_DIR, RESCORE_FILE, BASE = "rescore", "rescore.json", "base"
Settings = dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """One setting that reaches full training; ``settings`` None is the base recipe."""

    name: str  # its folder under rescore/
    settings: Settings | None
    proxy: float | None  # the search's reduced-fidelity fitness (None: never evaluated)


def candidate_name(settings: Settings) -> str:
    return "p" + hashlib.sha1(settings_key(settings).encode()).hexdigest()[:10]


def top_candidates(
    rows: Iterable[dict[str, Any]], top_k: int, *, with_base: bool, base_proxy: float | None = None
) -> list[Candidate]:
    """The ``top_k`` best finished evaluations (cache rows), then the base recipe if asked."""
    finished = sorted((r for r in rows if r["value"] is not None), key=lambda r: -r["value"])
    chosen = [Candidate(candidate_name(r["settings"]), r["settings"], r["value"]) for r in finished]
    return chosen[:top_k] + ([Candidate(BASE, None, base_proxy)] if with_base else [])


def without_idle_generator(config: TrainConfig) -> TrainConfig:
    """``config`` without its GAN when it adds no faces: the same training, spelled as such."""
    synthetic = config.synthetic
    if synthetic.ratio > 0 or any(r > 0 for r in synthetic.class_ratios.values()):
        return config
    return replace(config, synthetic=SyntheticConfig())


class FullTraining:
    """Picklable fitness at full fidelity: a candidate -> PublicTest fitness of its kept epoch.

    A candidate whose recipe equals one of the finished trainings in ``trained`` (for
    ``ganpso run``: the real-data classifier, which is the base recipe without GAN faces) is
    scored from that training's history instead of being trained again. A candidate's own
    earlier training whose history lacks a measure the fitness weighs (made before the
    five-measure fitness) is moved to ``replaced/<time>/`` and trained afresh.
    """

    def __init__(
        self,
        base: TrainConfig,
        folder: Path,
        log: Callable[[str], None] = print,
        trained: Sequence[Path] = (),
        weights: dict[str, float] | None = None,
    ) -> None:
        self.base, self.folder, self.log, self.trained = base, folder, log, tuple(trained)
        self.weights = dict(DEFAULT_WEIGHTS) if weights is None else weights

    def config(self, candidate: Candidate) -> TrainConfig:
        return without_idle_generator(settings_config(self.base, candidate.settings or {}))

    def folder_of(self, candidate: Candidate) -> Path:
        config = self.config(candidate)
        for folder in self.trained:
            if self.scores(folder) and same_recipe(folder, config):
                return folder
        return self.folder / candidate.name

    def scores(self, folder: Path) -> bool:
        """Whether ``folder``'s training can be scored by this fitness: a training whose history
        lacks a weighed measure (made before the five-measure fitness) is trained again."""
        path = folder / "history.jsonl"
        if not path.exists():
            return False
        history = read_jsonl(path)
        return bool(history) and not missing_measures(history[0], self.weights)

    def __call__(self, candidate: Candidate) -> float:
        config, out = self.config(candidate), self.folder_of(candidate)
        scorable = self.scores(out)
        if out in self.trained or (scorable and finished(out, config)):
            self.log(f"rescore {candidate.name}: {out} holds its finished training")
            return kept_fitness(read_jsonl(out / "history.jsonl"), config, self.weights, out)
        if begun(out) and not scorable:
            # resuming would only replay a history this fitness cannot score
            archive = replaced_folder(self.folder) / out.name
            archive.parent.mkdir(parents=True, exist_ok=True)
            out.replace(archive)
            self.log(
                f"rescore {candidate.name}: its earlier training lacks a weighed measure, "
                f"moved to {archive}"
            )
        dataset = search_dataset(load_dataset(config.data))
        self.log(f"rescore {candidate.name}: full training in {out}")
        result = train_classifier(
            config, dataset, out, resume=(out / "state.pt").exists(), log=self.log
        )
        return kept_fitness(result.history, config, self.weights, out)


def begun(folder: Path) -> bool:
    """Whether ``folder`` holds at least one epoch of a training."""
    path = folder / "history.jsonl"
    return path.exists() and bool(read_jsonl(path))


def finished(folder: Path, config: TrainConfig) -> bool:
    """Whether ``folder`` holds every epoch of a training of ``config`` (nothing to resume)."""
    path = folder / "history.jsonl"
    if not path.exists() or not same_recipe(folder, config):
        return False
    return len(read_jsonl(path)) == config.epochs and (folder / "best.safetensors").exists()


def same_recipe(folder: Path, config: TrainConfig) -> bool:
    """Whether ``folder`` holds a training of ``config`` (where it ran aside)."""
    saved = TrainConfig.from_yaml(folder / "config.yaml")
    return replace(saved, device=config.device, num_threads=config.num_threads) == config


def kept_row(history: list[dict[str, float]], selection_metric: str) -> dict[str, float]:
    """The epoch a training keeps: the first best by its ``selection_metric``."""
    return max(history, key=lambda row: row[f"val/{selection_metric}"])  # max keeps the first


def kept_fitness(
    history: list[dict[str, float]], config: TrainConfig, weights: dict[str, float], folder: Path
) -> float:
    return row_fitness(kept_row(history, config.selection_metric), weights, str(folder))


def kept_macro_f1(history: list[dict[str, float]], selection_metric: str) -> float:
    """Macro-F1 of the epoch a training keeps: the first best by its ``selection_metric``."""
    return float(kept_row(history, selection_metric)["val/macro_f1"])


def rescore(
    candidates: list[Candidate],
    objective: Callable[[Candidate], float],
    executor: Executor,
    out: Path,
    log: Callable[[str], None] = print,
    folder_of: Callable[[Candidate], Path] | None = None,
) -> Candidate:
    """Train every candidate at full fidelity; the best one by that score.

    ``rescore.json`` in ``out`` lists each candidate with its search fitness (``proxy``), its
    full-training score (``full``) or ``error``, and, from ``folder_of``, where it trained.
    """
    if not candidates:
        raise ConfigError("rescoring asked for no candidates (rescore_top_k 0 and no base)")
    log(f"rescoring {len(candidates)} candidates with full training")

    def report(index: int, outcome: Outcome) -> None:
        value = "failed: " + str(outcome.error) if outcome.value is None else f"{outcome.value:.4f}"
        log(f"  rescore {candidates[index].name}: {value} ({outcome.seconds:.0f} s)")

    outcomes = executor.map(objective, candidates, on_result=report)
    rows = [
        asdict(c)
        | {"full": o.value, "error": o.error, "seconds": round(o.seconds, 1)}
        | ({"folder": str(folder_of(c))} if folder_of else {})
        for c, o in zip(candidates, outcomes, strict=True)
    ]
    pairs = zip(candidates, outcomes, strict=True)
    scored = [(o.value, c) for c, o in pairs if o.value is not None]
    if not scored:
        write_json_atomic({"candidates": rows, "chosen": None}, out / RESCORE_FILE)
        raise ConfigError(f"{out / RESCORE_FILE}: every full-fidelity training failed")
    full, winner = max(scored, key=lambda pair: pair[0])
    write_json_atomic({"candidates": rows, "chosen": winner.name}, out / RESCORE_FILE)
    log(f"rescoring chose {winner.name}: full-training fitness {full:.4f}")
    return winner


TRAINING_FILES = ("config.yaml", "history.jsonl", "best.safetensors")


def chosen_training(search_dir: Path) -> Path | None:
    """The rescoring winner's finished training folder, if the search rescored."""
    path = search_dir / RESCORE_FILE
    if not path.exists():
        return None
    record = read_json(path)
    rows = [row for row in record["candidates"] if row["name"] == record.get("chosen")]
    folder = Path(rows[0]["folder"]) if rows and "folder" in rows[0] else None
    finished = folder is not None and all((folder / f).exists() for f in TRAINING_FILES)
    return folder if finished else None


def reuse_training(search_dir: Path, out: Path) -> bool:
    """Copy the rescoring winner's finished training into ``out``; whether it did.

    Nothing is copied into a training already begun there.
    """
    trained = chosen_training(search_dir)
    if trained is None or (out / "history.jsonl").exists():
        return False
    out.mkdir(parents=True, exist_ok=True)
    for name in (*TRAINING_FILES, "state.pt", "curves.png"):
        if (trained / name).exists():
            shutil.copy2(trained / name, out / name)
    return True
