"""``ganpso run``: the whole method, one cached stage after another.

    classifier   real-data classifier (GAN metrics, the search's trunk, the fakes' filter)
    gan          class-conditional GAN on Training
    gan_metrics  FID/KID, CAS, near-copies and diversity of the GAN's faces
    search       PSO over the pipeline's settings, fitness = PublicTest macro-F1; its best few
                 settings then trained in full and the best of those chosen (rescore_top_k)
    final        full training with the chosen settings and the GAN's faces (the rescoring's
                 training of them, when there is one)
    test         the one PrivateTest evaluation
    report       Markdown and HTML report

Each stage writes into its own folder of the run and finishes by writing ``stage.json`` (wall
time, device). A rerun skips every stage that has one and resumes the first that has not: the
classifier, the GAN and the search resume from their own checkpoints inside that stage.

A rerun with an edited config redoes only the stages whose config sections changed (``inputs``)
and those built on them; their old folders, with the old ``config.yaml``, are moved to
``replaced/<time>/`` rather than deleted. A GAN whose only change is a larger budget (``steps``,
``time_limit_minutes``), or a search whose only change is a larger ``rescore_top_k``, continues
from its checkpoint; the stages after it run again. The device
and thread count are not inputs: a run started on CPU may continue on a GPU.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.config import RunConfig, TrainConfig, read_yaml, write_yaml
from ganpso.data import FerDataset, load_dataset
from ganpso.device import describe_device, resolve_device
from ganpso.errors import ConfigError

Log = Callable[[str], None]


@dataclass
class RunContext:
    config: RunConfig
    run_dir: Path
    command: str
    log: Log
    _dataset: FerDataset | None = None

    @property
    def dataset(self) -> FerDataset:
        if self._dataset is None:
            self._dataset = load_dataset(self.config.data)
        return self._dataset

    def path(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[RunContext], None]
    inputs: tuple[str, ...]  # the RunConfig sections its outputs depend on, upstream ones included
    extra_outputs: tuple[str, ...] = ()  # files it writes outside its own folder


def run_classifier(ctx: RunContext) -> None:
    train_and_report(ctx, ctx.config.classifier, ctx.path("classifier"))


def run_gan(ctx: RunContext) -> None:
    from ganpso.gan import GanTrainer

    out = ctx.path("gan")
    trainer = GanTrainer(ctx.config.gan, out, log=ctx.log)
    trainer.fit(ctx.dataset["Training"], resume=(out / "gan-state.pt").exists())


def run_gan_metrics(ctx: RunContext) -> None:
    from ganpso.metrics import write_json
    from ganpso.metrics.gan import evaluate_generator

    settings = ctx.config.gan_metrics
    if not settings.enabled:
        ctx.log("gan_metrics: disabled in this profile")
        return
    report = evaluate_generator(
        ctx.path("gan"),
        ctx.path("classifier", "best.safetensors"),
        ctx.config.data.source,
        per_class=settings.per_class,
        cas_epochs=settings.cas_epochs,
        cas_per_class=settings.cas_per_class,
        cas_seeds=settings.cas_seeds,
        ratio_draws=settings.ratio_draws,
        device=ctx.config.device,
        command=ctx.command,
        seed=ctx.config.seed,
    )
    write_json(report, ctx.path("gan", "gan-metrics.json"))
    ctx.log(report["summary"])


def run_search_stage(ctx: RunContext) -> None:
    from ganpso.pipeline.search import search_pipeline

    best = search_pipeline(
        ctx.config.search,
        base=final_base(ctx),
        trunk=ctx.path("classifier", "best.safetensors"),
        out=ctx.path("search"),
        log=ctx.log,
        trained=[ctx.path("classifier")],
    )
    write_yaml(best.to_dict(), ctx.path("search", "best-config.yaml"))


def final_base(ctx: RunContext) -> TrainConfig:
    """The classifier recipe with this run's GAN and filter classifier plugged in."""
    raw = ctx.config.classifier.to_dict()
    raw["synthetic"] |= {
        "generator": str(ctx.path("gan", "generator.safetensors")),
        "filter_classifier": str(ctx.path("classifier", "best.safetensors")),
    }
    return TrainConfig.from_dict(raw)


def run_final(ctx: RunContext) -> None:
    from ganpso.pipeline.rescore import reuse_training

    config = TrainConfig.from_yaml(ctx.path("search", "best-config.yaml"))
    if reuse_training(ctx.path("search"), ctx.path("final")):
        ctx.log("final: the search's rescoring trained these settings already; reusing it")
        report_public(ctx, config, ctx.path("final"))
    else:
        train_and_report(ctx, config, ctx.path("final"))


def run_test(ctx: RunContext) -> None:
    evaluate_private(ctx.path("final"), ctx.dataset, ctx.command)


def run_report(ctx: RunContext) -> None:
    from ganpso.report import write_report

    markdown, html = write_report(ctx.run_dir)
    ctx.log(f"report: {markdown} and {html}")


TRAINED = ("data", "seed", "classifier", "gan", "search")
STAGES = (
    Stage("classifier", run_classifier, ("data", "seed", "classifier")),
    Stage("gan", run_gan, ("data", "seed", "gan")),
    Stage(
        "gan_metrics",
        run_gan_metrics,
        ("data", "seed", "classifier", "gan", "gan_metrics"),
        extra_outputs=("gan/gan-metrics.json",),
    ),
    Stage("search", run_search_stage, TRAINED),
    Stage("final", run_final, TRAINED),
    Stage("test", run_test, TRAINED),
    Stage("report", run_report, (*TRAINED, "gan_metrics")),
)
STAGE_INPUTS = {stage.name: stage.inputs for stage in STAGES}
RUNTIME_KEYS = {"device", "num_threads"}
# A stage whose section changed only by a raised budget continues from its checkpoint instead of
# starting over (the GAN's lr is constant, so more steps later equal more steps now; a search
# asked to rescore more of its best settings keeps its evaluations).
BUDGET_KEYS = {"gan": ("steps", "time_limit_minutes"), "search": ("rescore_top_k",)}


def train_and_report(ctx: RunContext, config: TrainConfig, out: Path) -> None:
    """Train (or resume) a classifier in ``out`` and write its PublicTest report."""
    from ganpso.classifier import fit

    fit(config, ctx.dataset, out, resume=(out / "state.pt").exists(), log=ctx.log)
    report_public(ctx, config, out)


def report_public(ctx: RunContext, config: TrainConfig, out: Path) -> None:
    """The PublicTest report of the classifier trained in ``out``, with the recipe's own views."""
    from ganpso.classifier import load_classifier
    from ganpso.classifier.evaluation import evaluate_checkpoint, write_report

    device = resolve_device(config.device)
    report = evaluate_checkpoint(
        load_classifier(out / "best.safetensors", device),
        ctx.dataset["PublicTest"],
        "PublicTest",
        device=device,
        tta=config.tta,
        precision=config.precision,
        command=ctx.command,
        seed=config.seed,
    )
    write_report(report, out)


@dataclass(frozen=True)
class PrivatePredictions:
    labels: np.ndarray
    probs: np.ndarray
    classes: tuple[str, ...]
    device: str
    seed: int
    seconds: float

    @property
    def predictions(self) -> np.ndarray:
        return self.probs.argmax(1)

    def save(self, model_dir: Path) -> None:
        np.savez_compressed(
            model_dir / "predictions-PrivateTest.npz",
            y_true=self.labels,
            y_pred=self.predictions,
            probs=self.probs.astype(np.float32),
        )


def predict_private(model_dir: Path, dataset: FerDataset) -> PrivatePredictions:
    """``model_dir``'s best checkpoint on PrivateTest, with its own views and precision."""
    from ganpso.classifier import load_classifier
    from ganpso.classifier.training import predict_proba

    config = TrainConfig.from_yaml(model_dir / "config.yaml")
    device = resolve_device(config.device)
    checkpoint = load_classifier(model_dir / "best.safetensors", device)
    private = dataset["PrivateTest"]
    started = time.perf_counter()
    probs = predict_proba(
        checkpoint.model,
        private.images,
        crop=checkpoint.preprocessing.crop,
        tta=config.tta,
        device=device,
        precision=config.precision,
    )
    return PrivatePredictions(
        private.labels,
        probs,
        checkpoint.classes,
        describe_device(device),
        config.seed,
        time.perf_counter() - started,
    )


def evaluate_private(model_dir: Path, dataset: FerDataset, command: str) -> dict[str, Any]:
    """The one PrivateTest evaluation of ``model_dir``: metrics, confusion plot, predictions."""
    from ganpso.classifier.evaluation import write_report
    from ganpso.metrics import build_metrics_report

    if (model_dir / "metrics-PrivateTest.json").exists():
        raise ConfigError(f"{model_dir}: PrivateTest was already evaluated; it is touched once")
    result = predict_private(model_dir, dataset)
    report = build_metrics_report(
        result.labels,
        result.predictions,
        split="PrivateTest",
        classes=result.classes,
        device=result.device,
        seconds=result.seconds,
        command=command,
        seed=result.seed,
    )
    result.save(model_dir)
    write_report(report, model_dir)
    return report


def recover_predictions(model_dir: Path, dataset: FerDataset) -> None:
    """Predictions of a model whose PrivateTest report predates the predictions file.

    The evaluation is repeated as it was run (same views and precision) and kept only if its
    confusion matrix equals the recorded one: it reproduces the one evaluation, it is not a new
    one.
    """
    from ganpso.metrics import classification_metrics, read_json

    result = predict_private(model_dir, dataset)
    recorded = read_json(model_dir / "metrics-PrivateTest.json")["confusion_matrix"]
    if classification_metrics(result.labels, result.predictions)["confusion_matrix"] != recorded:
        raise ConfigError(f"{model_dir}: cannot reproduce its PrivateTest predictions")
    result.save(model_dir)


def stage_done(run_dir: Path, name: str) -> bool:
    return (run_dir / name / "stage.json").exists()


EARLIER_STAGE_FILE = "stage-earlier.json"  # an extended stage's record of its earlier sessions


def mark_done(run_dir: Path, name: str, seconds: float, device: str) -> None:
    """Write ``stage.json``; an extended stage's seconds include those of its earlier sessions."""
    record: dict[str, Any] = {"stage": name, "seconds": round(seconds, 1), "device": device}
    folder = run_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    earlier_path = folder / EARLIER_STAGE_FILE
    if earlier_path.exists():
        earlier = json.loads(earlier_path.read_text())
        record["seconds"] = round(seconds + earlier["seconds"], 1)
        record["sessions"] = [*earlier.get("sessions", [earlier["seconds"]]), round(seconds, 1)]
        if earlier.get("device") != device:
            record["device"] = f"{earlier.get('device')}, then {device}"
    (folder / "stage.json").write_text(json.dumps(record, indent=2) + "\n")
    earlier_path.unlink(missing_ok=True)


def config_sections(config: RunConfig) -> dict[str, Any]:
    """The config by top-level section, without the keys that only say where it runs."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in RUNTIME_KEYS}
        return node

    return strip(config.to_dict())


def stale_stages(saved: RunConfig, config: RunConfig) -> list[str]:
    """The stages whose inputs differ between the config a run folder holds and the new one."""
    old, new = config_sections(saved), config_sections(config)
    changed = {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
    return [stage.name for stage in STAGES if changed & set(stage.inputs)]


def budget_raised(stage: str, saved: RunConfig, config: RunConfig) -> bool:
    """Whether ``stage``'s inputs differ only by larger budget keys (None: no limit)."""
    keys = BUDGET_KEYS.get(stage)
    old, new = config_sections(saved), config_sections(config)
    if keys is None or any(old[s] != new[s] for s in STAGE_INPUTS[stage] if s != stage):
        return False
    rest_old = {k: v for k, v in old[stage].items() if k not in keys}
    rest_new = {k: v for k, v in new[stage].items() if k not in keys}
    return rest_old == rest_new and all(
        new[stage][k] is None or (old[stage][k] is not None and new[stage][k] >= old[stage][k])
        for k in keys
    )


def set_aside(run_dir: Path, stage: Stage, archive: Path) -> None:
    """Move a stage's outputs from the run folder into ``archive``."""
    if (run_dir / stage.name).exists():
        shutil.move(run_dir / stage.name, archive / stage.name)
    for extra in stage.extra_outputs:
        if (run_dir / extra).exists():
            (archive / stage.name).mkdir(parents=True, exist_ok=True)
            shutil.move(run_dir / extra, archive / stage.name / Path(extra).name)


def prepare_run_dir(config: RunConfig, run_dir: Path, log: Log = print) -> RunConfig:
    """Write the resolved config; on a rerun with another config, set the stale stages aside."""
    path = run_dir / "config.yaml"
    if path.exists():
        saved = RunConfig.from_dict(read_yaml(path))
        stale = [name for name in stale_stages(saved, config) if (run_dir / name).exists()]
        extended = [name for name in stale if budget_raised(name, saved, config)]
        for name in extended:
            if stage_done(run_dir, name):  # else it stopped mid-way and simply resumes
                (run_dir / name / "stage.json").replace(run_dir / name / EARLIER_STAGE_FILE)
            log(f"{name}: budget raised, continues from its checkpoint")
        stale = [name for name in stale if name not in extended]
        if stale:
            archive = run_dir / "replaced" / time.strftime("%Y%m%d-%H%M%S")
            archive.mkdir(parents=True)
            shutil.copy2(path, archive / "config.yaml")
            for stage in STAGES:
                if stage.name in stale:
                    set_aside(run_dir, stage, archive)
            log(f"config changed: {', '.join(stale)} will run again; old outputs in {archive}")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_yaml(config.to_dict(), path)
    return config


def run_pipeline(
    config: RunConfig,
    run_dir: Path,
    *,
    command: str = "",
    stop_after: str | None = None,
    log: Log = print,
) -> list[str]:
    """Run every unfinished stage in order; returns the names of the stages run now."""
    names = [stage.name for stage in STAGES]
    if stop_after is not None and stop_after not in names:
        raise ConfigError(f"--stop-after {stop_after!r}: not a stage; stages: {names}")
    config = prepare_run_dir(config, run_dir, log)
    ctx = RunContext(config, run_dir, command, log)
    device = describe_device(resolve_device(config.device))
    ran = []
    for stage in STAGES:
        if stage.name != "report" and stage_done(run_dir, stage.name):
            log(f"[{stage.name}] done earlier, skipped")
        else:
            log(f"[{stage.name}] running on {device}")
            started = time.perf_counter()
            stage.run(ctx)
            mark_done(run_dir, stage.name, time.perf_counter() - started, device)
            ran.append(stage.name)
        if stage.name == stop_after:
            break
    return ran
