"""``ganpso run | search | compare | report``: the whole method and its evidence."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

from ganpso.cli.classifier import raw_config
from ganpso.config import apply_overrides, read_yaml
from ganpso.errors import ConfigError

PROFILES = ("smoke", "default", "gpu")


def add_pipeline_commands(commands: Any) -> None:
    add_run_command(commands)
    add_search_command(commands)
    add_compare_command(commands)
    report = commands.add_parser(
        "report",
        help="write the Markdown and HTML report of a run",
        description="Write report.md and a self-contained report.html from a run folder "
        "(comparison, GAN samples and metrics, PSO convergence, published anchors).",
    )
    report.add_argument("run", type=Path, help="run folder of `ganpso run`")
    report.add_argument("--out", type=Path, help="folder for the report (default: RUN/report)")
    report.add_argument("--compare", type=Path, help="comparison cells (default: RUN/compare)")


def add_run_command(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="the whole method: classifier, GAN, PSO search, final training, test, report",
        description="Run GAN-PSO end to end. Each stage's output is kept in --out; a rerun "
        "resumes at the first unfinished stage. Profiles: smoke (minutes, a small subset), "
        "default (the real result on a 2-core CPU), gpu (longer GAN and search).",
    )
    run.add_argument("--profile", choices=PROFILES, help="built-in profile (default: default)")
    run.add_argument("--config", type=Path, help="YAML run config instead of a profile")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    run.add_argument("--data", help="dataset (default: the profile's)")
    run.add_argument("--seed", type=int)
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--out", type=Path, required=True, help="run folder")
    run.add_argument("--stop-after", metavar="STAGE", help="stop after this stage")


def add_search_command(commands: Any) -> None:
    search = commands.add_parser(
        "search",
        help="PSO (or random / TPE) over the pipeline's settings; fitness = PublicTest macro-F1",
        description="Search synthetic-image counts, their filter and weight, and classifier "
        "hyper-parameters. Writes evaluations.jsonl, history.json, convergence.png and "
        "best-config.yaml (a config for `ganpso train`) into --out; a rerun resumes.",
    )
    search.add_argument("--config", type=Path, help="YAML search config (configs/search.yaml)")
    search.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    search.add_argument("--train-config", type=Path, help="base classifier config (YAML)")
    search.add_argument("--trunk", type=Path, required=True, help="real-data classifier")
    search.add_argument("--generator", type=Path, help="GAN run folder or generator.safetensors")
    search.add_argument("--data", help="dataset (default: the train config's)")
    search.add_argument("--optimizer", choices=("pso", "random", "tpe"))
    search.add_argument("--executor", choices=("sequential", "process", "ray"))
    search.add_argument("--ray-address", help="Ray cluster address (default: start a local Ray)")
    search.add_argument("--workers", type=int, help="evaluations in parallel")
    search.add_argument("--threads-per-worker", type=int, help="torch threads per evaluation")
    search.add_argument("--seed", type=int)
    search.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    search.add_argument("--out", type=Path, required=True, help="search folder")


def add_compare_command(commands: Any) -> None:
    from ganpso.pipeline.compare import METHODS

    compare = commands.add_parser(
        "compare",
        help="GAN-PSO against existing algorithms, same protocol, budget and seeds",
        description="Train and test every (method, seed) cell with the run's recipe; finished "
        "cells are kept, so an interrupted comparison continues. Methods: "
        + ", ".join(f"{k} ({m.title})" for k, m in METHODS.items()),
    )
    compare.add_argument("--run", type=Path, required=True, help="run folder of `ganpso run`")
    compare.add_argument("--methods", nargs="+", default=list(METHODS), metavar="METHOD")
    compare.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    compare.add_argument("--out", type=Path, help="cells folder (default: RUN/compare)")


def profile_path(name: str) -> Path:
    return Path(str(resources.files("ganpso") / "profiles" / f"{name}.yaml"))


def run_run(args: argparse.Namespace, command: str) -> int:
    from ganpso.config import RunConfig
    from ganpso.pipeline.run import run_pipeline

    if args.config and args.profile:
        raise ConfigError("give --profile or --config, not both")
    args.config = args.config or profile_path(args.profile or "default")
    config = RunConfig.from_dict(raw_config(args))
    if not Path(config.data.source).expanduser().exists():
        raise ConfigError(f"{config.data.source}: dataset not found (set --data or data.source)")
    ran = run_pipeline(config, args.out, command=command, stop_after=args.stop_after)
    print(f"stages run now: {', '.join(ran) or 'none'}; run folder {args.out}")
    return 0


def run_search_command(args: argparse.Namespace, command: str) -> int:
    from ganpso.config import SearchConfig, TrainConfig, write_yaml
    from ganpso.pipeline.search import search_pipeline

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
    best = search_pipeline(search, base=base, trunk=args.trunk, out=args.out)
    write_yaml(best.to_dict(), args.out / "best-config.yaml")
    print(
        f"best settings: {args.out}/best.yaml; train with: ganpso train --config "
        f"{args.out}/best-config.yaml"
    )
    return 0


def run_compare(args: argparse.Namespace, command: str) -> int:
    from ganpso.pipeline.compare import compare
    from ganpso.report import write_report

    out = args.out or args.run / "compare"
    cells = compare(args.run, args.methods, args.seeds, out)
    print(f"{len(cells)} cells in {out}")
    markdown, html = write_report(args.run, compare_dir=out)
    print(f"report: {markdown}, {html}")
    return 0


def run_report(args: argparse.Namespace, command: str) -> int:
    from ganpso.report import write_report

    markdown, html = write_report(args.run, args.out, compare_dir=args.compare)
    print(f"wrote {markdown} and {html}")
    return 0
