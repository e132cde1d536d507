"""``ganpso run``: the whole method, one cached stage after another.

    classifier    real-data classifier (GAN metrics, the fakes' filter, the base recipe's training)
    gan           class-conditional GAN on Training
    gan_metrics   FID/KID, CAS, near-copies and diversity of the GAN's faces
    search        PSO over the pipeline's settings, fitness = PublicTest measures; its best few
                  settings then trained in full and the best of those chosen (rescore_top_k)
    final         full training with the chosen settings and the GAN's faces (the rescoring's
                  training of them, when there is one)
    test          the one PrivateTest evaluation
    ensemble      the rescored trainings as one ensemble, weights chosen on PublicTest, then its
                  own PrivateTest evaluation (``pipeline.swarm_ensemble``)
    search-nogan  on request only: the same search without its synthetic-image settings, for
                  the comparison's ``pso_no_gan`` row (``ganpso compare`` asks for it)
    search-random on request only: that search with random sampling in place of PSO, for the
                  comparison's ``random_search`` row (a recipe tuned at GAN-PSO's budget)

The report (``ganpso.report``) is built from the run folder after the stages.

Each stage writes into its own folder of the run and finishes by writing ``stage.json`` (wall
time, device). A rerun skips every stage that has one and resumes the first that has not: the
classifier, the GAN and the searches resume from their own checkpoints inside that stage. A rerun
with an edited config redoes only the stages that it makes stale (``ganpso.pipeline.rerun``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ganpso.classifier.config import TrainConfig
from ganpso.data import FerDataset, load_dataset
from ganpso.device import describe_device, resolve_device
from ganpso.errors import ConfigError
from ganpso.gan import GanTrainer
from ganpso.gan.evaluation import evaluate_generator
from ganpso.metrics import write_json
from ganpso.pipeline.clock import StageClock
from ganpso.pipeline.config import RunConfig, SearchConfig
from ganpso.pipeline.evaluation import evaluate_private, evaluate_public
from ganpso.pipeline.folders import (
    CONFIG_FILE,
    read_best_config,
    read_run_config,
    stage_done,
    write_best_config,
    write_stage_record,
)
from ganpso.pipeline.rerun import open_run_folder
from ganpso.pipeline.rescore import reuse_training
from ganpso.pipeline.search import search_pipeline
from ganpso.pipeline.swarm_ensemble import build_swarm_ensemble
from ganpso.pipeline.training import train_classifier

Log = Callable[[str], None]


@dataclass
class RunContext:
    config: RunConfig
    run_dir: Path
    command: str
    log: Log
    # finished full trainings outside the run that a search's rescoring may reuse
    reusable: tuple[Path, ...] = ()
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
    name: str  # also its folder in the run
    run: Callable[[RunContext], None]
    inputs: tuple[str, ...]  # the RunConfig sections its outputs depend on, upstream ones included
    extra_outputs: tuple[str, ...] = ()  # files it writes outside its own folder
    on_request: bool = False  # run only when asked for (``ganpso run --with``, ``compare``)


def train_real_classifier(ctx: RunContext) -> None:
    train_and_evaluate(ctx, ctx.config.classifier, ctx.path("classifier"))


def train_gan(ctx: RunContext) -> None:
    out = ctx.path("gan")
    trainer = GanTrainer(ctx.config.gan, out, log=ctx.log)
    trainer.fit(ctx.dataset["Training"], resume=(out / "gan-state.pt").exists())


def measure_gan(ctx: RunContext) -> None:
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


def search_settings(ctx: RunContext) -> None:
    search_into(ctx, "search", ctx.config.search, gan_recipe(ctx.config, ctx.run_dir))


def without_gan_knobs(search: SearchConfig) -> SearchConfig:
    """The search without its synthetic-image settings (the same budget and fidelity); its
    start points lose them too, and those that then coincide are evaluated once."""
    space = {k: v for k, v in search.space.items() if not k.startswith("synthetic.")}
    if not space:
        raise ConfigError("the search space has only synthetic settings: nothing left to tune")
    points = [
        {k: v for k, v in point.items() if not k.startswith("synthetic.")}
        for point in search.start_points
    ]
    distinct = [point for i, point in enumerate(points) if point not in points[:i]]
    return replace(search, space=space, start_points=distinct)


def search_without_gan(ctx: RunContext) -> None:
    """The run's search space without its synthetic-image settings, around the plain recipe."""
    search_into(ctx, "search-nogan", without_gan_knobs(ctx.config.search), ctx.config.classifier)


def search_recipe_randomly(ctx: RunContext) -> None:
    """The recipe tuned as the literature's baseline does: random search over the same space
    without GAN settings, with the search's budget (iterations, particles, fidelity, rescoring)."""
    search = replace(without_gan_knobs(ctx.config.search), optimizer="random")
    search_into(ctx, "search-random", search, ctx.config.classifier)


def search_into(ctx: RunContext, folder: str, search: SearchConfig, base: TrainConfig) -> None:
    """Search around ``base``; the real-data classifier is a training its rescoring may reuse."""
    best = search_pipeline(
        search,
        base=base,
        out=ctx.path(folder),
        log=ctx.log,
        trained=[ctx.path("classifier"), *ctx.reusable],
    )
    write_best_config(best, ctx.path(folder))


def gan_recipe(run: RunConfig, run_dir: Path) -> TrainConfig:
    """The classifier recipe with the run's GAN and filter classifier plugged in."""
    raw = run.classifier.to_dict()
    raw["synthetic"] |= {
        "generator": str(run_dir / "gan" / "generator.safetensors"),
        "filter_classifier": str(run_dir / "classifier" / "best.safetensors"),
    }
    return TrainConfig.from_dict(raw)


def train_final(ctx: RunContext) -> None:
    config = read_best_config(ctx.path("search"))
    if reuse_training(ctx.path("search"), ctx.path("final")):
        ctx.log("final: the search's rescoring trained these settings already; reusing it")
        evaluate_public(config, ctx.path("final"), ctx.dataset, ctx.command)
    else:
        train_and_evaluate(ctx, config, ctx.path("final"))


def evaluate_final(ctx: RunContext) -> None:
    evaluate_private(ctx.path("final"), ctx.dataset, ctx.command)


def ensemble_particles(ctx: RunContext) -> None:
    build_swarm_ensemble(
        ctx.path("search"),
        ctx.path("ensemble"),
        ctx.dataset,
        weights=ctx.config.search.fitness,
        device=ctx.config.device,
        command=ctx.command,
        log=ctx.log,
    )


def train_and_evaluate(ctx: RunContext, config: TrainConfig, out: Path) -> None:
    """Train (or resume) a classifier in ``out`` and write its PublicTest report."""
    train_classifier(config, ctx.dataset, out, resume=(out / "state.pt").exists(), log=ctx.log)
    evaluate_public(config, out, ctx.dataset, ctx.command)


REAL = ("data", "seed", "classifier")
TRAINED = (*REAL, "gan", "search")
STAGES = (
    Stage("classifier", train_real_classifier, REAL),
    Stage("gan", train_gan, ("data", "seed", "gan")),
    Stage(
        "gan_metrics",
        measure_gan,
        (*REAL, "gan", "gan_metrics"),
        extra_outputs=("gan/gan-metrics.json",),
    ),
    Stage("search", search_settings, TRAINED),
    Stage("final", train_final, TRAINED),
    Stage("test", evaluate_final, TRAINED),
    Stage("ensemble", ensemble_particles, TRAINED),
    # on request: the comparison's pso_no_gan and random_search rows (`ganpso compare`,
    # `ganpso run --with`)
    Stage("search-nogan", search_without_gan, (*REAL, "search"), on_request=True),
    Stage("search-random", search_recipe_randomly, (*REAL, "search"), on_request=True),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)
ON_REQUEST = tuple(stage.name for stage in STAGES if stage.on_request)


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ConfigError(f"{name!r}: not a stage; stages: {list(STAGE_NAMES)}")


def upstream(stage: Stage) -> list[Stage]:
    """The stages ``stage`` builds on: the earlier ones whose inputs are among its own."""
    earlier = STAGES[: STAGES.index(stage)]
    return [s for s in earlier if not s.on_request and set(s.inputs) <= set(stage.inputs)]


def execute(ctx: RunContext, stage: Stage, device: str) -> None:
    ctx.log(f"[{stage.name}] running on {device}")
    clock, log = StageClock(ctx.run_dir / stage.name, device), ctx.log
    ctx.log = clock.ticking(log)  # a crashed session still counts up to its last progress line
    try:
        stage.run(ctx)
    finally:
        ctx.log = log
    write_stage_record(ctx.run_dir, stage.name, clock.stop())


def run_pipeline(
    config: RunConfig,
    run_dir: Path,
    *,
    command: str = "",
    stop_after: str | None = None,
    extra: Sequence[str] = (),
    log: Log = print,
) -> list[str]:
    """Run every unfinished stage in order; returns the names of the stages run now.

    A stage on request runs only when named in ``extra`` (or as ``stop_after``).
    """
    asked = [*extra, *([stop_after] if stop_after else [])]
    for name in asked:
        stage_named(name)
    always = sorted(set(extra) - set(ON_REQUEST))
    if always:
        raise ConfigError(f"--with {always}: these run anyway; on request: {list(ON_REQUEST)}")
    open_run_folder(config, run_dir, STAGES, log)
    ctx = RunContext(config, run_dir, command, log)
    device = describe_device(resolve_device(config.device))
    ran = []
    for stage in STAGES:
        if stage.on_request and stage.name not in asked:
            continue
        if stage_done(run_dir, stage.name):
            log(f"[{stage.name}] done earlier, skipped")
        else:
            execute(ctx, stage, device)
            ran.append(stage.name)
        if stage.name == stop_after:
            break
    return ran


def run_stage(
    run_dir: Path,
    name: str,
    *,
    command: str = "",
    reusable: Sequence[Path] = (),
    log: Log = print,
) -> Path:
    """Run (or resume) one stage of a run folder with the config the folder holds; its folder.

    The stages it builds on must have finished; else the error names the command that
    finishes them. ``reusable``: trainings outside the run that its rescoring may reuse.
    """
    config = read_run_config(run_dir)
    stage = stage_named(name)
    missing = [s.name for s in upstream(stage) if not stage_done(run_dir, s.name)]
    if missing:
        raise ConfigError(
            f"{run_dir}: stage {name} needs {', '.join(missing)}, unfinished; finish the run "
            f"first: ganpso run --config {run_dir / CONFIG_FILE} --out {run_dir}"
        )
    if not stage_done(run_dir, name):
        ctx = RunContext(config, run_dir, command, log, tuple(reusable))
        execute(ctx, stage, describe_device(resolve_device(config.device)))
    return run_dir / name
