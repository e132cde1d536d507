"""``ganpso run | search | compare | report``: the whole method and its evidence."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

from ganpso.classifier.config import TrainConfig
from ganpso.cli.classifier import raw_config
from ganpso.cli.parser import add_override_argument
from ganpso.config import apply_overrides, read_yaml
from ganpso.data.loading import locate_source
from ganpso.errors import ConfigError
from ganpso.pipeline.compare import METHODS, compare
from ganpso.pipeline.config import RunConfig, SearchConfig
from ganpso.pipeline.folders import BEST_CONFIG_FILE, write_best_config
from ganpso.pipeline.run import ON_REQUEST, STAGE_NAMES, run_pipeline
from ganpso.pipeline.search import search_pipeline
from ganpso.report import write_report
from ganpso.report.comparison_data import write_comparison_json

PROFILES = ("smoke", "default", "gpu", "wide")
REPORT_STEP = "report"  # after the stages: built from the run folder
RUN_STEPS = (*STAGE_NAMES, REPORT_STEP)


def add_pipeline_commands(commands: Any) -> None:
    add_run_command(commands)
    add_search_command(commands)
    add_compare_command(commands)
    add_report_command(commands)


def add_run_command(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="the whole method: classifier, GAN, PSO search, final training, test, report",
        description="Run GAN-PSO end to end, one stage after another: "
        + ", ".join(RUN_STEPS)
        + ". Each stage's output is kept in --out; a rerun resumes at the first unfinished "
        f"stage. {', '.join(ON_REQUEST)} runs only when asked for (--with, or `ganpso compare`). "
        "Profiles: smoke (minutes, a small subset), default (the real result on a 2-core CPU), "
        "gpu (longer GAN and search), wide (the gpu profile searching the training recipe too).",
    )
    run.add_argument("--profile", choices=PROFILES, help="built-in profile (default: default)")
    run.add_argument(
        "--config", type=Path, help="YAML run config instead of a profile (default: the profile)"
    )
    add_override_argument(run, example="search.iterations=2")
    run.add_argument("--data", help="dataset (default: the profile's)")
    run.add_argument("--seed", type=int, help="seed of every stage (default: the profile's)")
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the profile's)")
    run.add_argument("--out", type=Path, required=True, help="run folder (required)")
    run.add_argument(
        "--stop-after",
        choices=RUN_STEPS,
        metavar="STAGE",
        help=f"stop after STAGE, one of {', '.join(RUN_STEPS)} (default: every stage but those "
        "on request, then the report)",
    )
    run.add_argument(
        "--with",
        dest="extra_stages",
        action="append",
        choices=ON_REQUEST,
        default=[],
        metavar="STAGE",
        help=f"also run STAGE, which runs only on request: {', '.join(ON_REQUEST)}, the search "
        "without GAN images and the random search of the recipe that `ganpso compare` needs for "
        "its pso_no_gan and random_search rows (default: none)",
    )


def add_search_command(commands: Any) -> None:
    search = commands.add_parser(
        "search",
        help="PSO (or random / TPE) over the pipeline's settings; fitness = the mean of the five "
        "PublicTest measures (search.fitness)",
        description="Search synthetic-image counts, their filter and weight, and classifier "
        "hyper-parameters. Writes evaluations.jsonl, history.json, convergence.png and "
        f"{BEST_CONFIG_FILE} (a config for `ganpso train`) into --out; a rerun resumes.",
    )
    search.add_argument(
        "--config",
        type=Path,
        help="YAML search config, e.g. configs/search.yaml (default: built-in defaults)",
    )
    add_override_argument(search, example="iterations=2")
    search.add_argument(
        "--train-config", type=Path, help="base classifier config (YAML) (default: built-in)"
    )
    search.add_argument(
        "--trunk",
        type=Path,
        required=True,
        help="real-data classifier (.safetensors); with --generator it filters the fakes "
        "(required)",
    )
    search.add_argument(
        "--generator",
        type=Path,
        help="GAN run folder or generator.safetensors (default: the train config's)",
    )
    search.add_argument("--data", help="dataset (default: the train config's)")
    optimizers, executors = ("pso", "random", "tpe", "cma"), ("sequential", "process", "ray")
    search.add_argument(
        "--optimizer", choices=optimizers, help="search algorithm (default: the config's)"
    )
    search.add_argument(
        "--executor", choices=executors, help="where evaluations run (default: the config's)"
    )
    search.add_argument("--ray-address", help="Ray cluster address (default: start a local Ray)")
    search.add_argument(
        "--workers", type=int, help="evaluations in parallel (default: the config's)"
    )
    search.add_argument(
        "--threads-per-worker",
        type=int,
        help="torch threads per evaluation (default: the config's)",
    )
    search.add_argument("--seed", type=int, help="the search's seed (default: the config's)")
    search.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the train config's)")
    search.add_argument("--out", type=Path, required=True, help="search folder (required)")


def add_compare_command(commands: Any) -> None:
    compare_parser = commands.add_parser(
        "compare",
        help="GAN-PSO against existing algorithms, same protocol, budget and seeds",
        description="Train and test every (method, seed) cell with the run's recipe; finished "
        "cells are kept, so an interrupted comparison continues; then write the run's report. "
        "pso_no_gan and random_search run (or resume) the run's search-nogan and search-random "
        "stages first. Methods: " + ", ".join(f"{k} ({m.title})" for k, m in METHODS.items()),
    )
    compare_parser.add_argument(
        "--run", type=Path, required=True, help="run folder of `ganpso run` (required)"
    )
    compare_parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        metavar="METHOD",
        help="methods to run, in this order (default: all of them)",
    )
    compare_parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0, 1, 2],
        metavar="SEED",
        help="seeds of the seeded methods (default: 0 1 2)",
    )
    compare_parser.add_argument("--out", type=Path, help="cells folder (default: RUN/compare)")


def add_report_command(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="write the Markdown and HTML report of a run",
        description="Write report.md and a self-contained report.html from a run folder "
        "(comparison, GAN samples and metrics, PSO convergence, published anchors).",
    )
    report.add_argument("run", type=Path, help="run folder of `ganpso run`")
    report.add_argument("--out", type=Path, help="folder for the report (default: RUN/report)")
    report.add_argument("--compare", type=Path, help="comparison cells (default: RUN/compare)")


def profile_path(name: str) -> Path:
    return Path(str(resources.files("ganpso") / "profiles" / f"{name}.yaml"))


def run_run(args: argparse.Namespace, command: str) -> int:
    if args.config and args.profile:
        raise ConfigError("give --profile or --config, not both")
    args.config = args.config or profile_path(args.profile or "default")
    config = RunConfig.from_dict(raw_config(args))
    locate_source(config.data.source)  # before any compute: the dataset is there
    stop_after = None if args.stop_after == REPORT_STEP else args.stop_after
    ran = run_pipeline(
        config, args.out, command=command, stop_after=stop_after, extra=args.extra_stages
    )
    if stop_after is None:
        markdown, html = write_report(args.out)
        print(f"[{REPORT_STEP}] {markdown} and {html}")
        ran.append(REPORT_STEP)
    print(f"stages run now: {', '.join(ran) or 'none'}; run folder {args.out}")
    return 0


def run_search_command(args: argparse.Namespace, command: str) -> int:
    raw = read_yaml(args.config) if args.config else {}
    flags = {
        "optimizer": args.optimizer,
        "executor": args.executor,
        "ray_address": args.ray_address,
        "workers": args.workers,
        "threads_per_worker": args.threads_per_worker,
        "seed": args.seed,
    }
    raw |= {k: v for k, v in flags.items() if v is not None}
    search = SearchConfig.from_dict(apply_overrides(raw, args.overrides))
    base_raw = read_yaml(args.train_config) if args.train_config else {}
    base = TrainConfig.from_dict(base_raw)
    if not args.trunk.exists():
        raise ConfigError(f"{args.trunk}: --trunk (the real-data classifier) not found")
    if args.data:
        base.data.source = args.data
    if args.device:
        base.device = args.device
    if args.generator:
        generator = args.generator
        base.synthetic.generator = str(
            generator / "generator.safetensors" if generator.is_dir() else generator
        )
        base.synthetic.filter_classifier = str(args.trunk)
    best = search_pipeline(search, base=base, out=args.out)
    write_best_config(best, args.out)
    print(
        f"best settings: {args.out}/best.yaml; train with: ganpso train --config "
        f"{args.out}/{BEST_CONFIG_FILE}"
    )
    return 0


def run_compare(args: argparse.Namespace, command: str) -> int:
    out = args.out or args.run / "compare"
    cells = compare(args.run, args.methods, args.seeds, out)
    print(f"{len(cells)} cells in {out}")
    print(f"comparison data: {write_comparison_json(out, args.run, command)}")
    markdown, html = write_report(args.run, compare_dir=out)
    print(f"report: {markdown}, {html}")
    return 0


def run_report(args: argparse.Namespace, command: str) -> int:
    markdown, html = write_report(args.run, args.out, compare_dir=args.compare)
    print(f"wrote {markdown} and {html}")
    data = write_comparison_json(args.compare or args.run / "compare", args.run, command)
    if data:
        print(f"wrote {data}")
    return 0
