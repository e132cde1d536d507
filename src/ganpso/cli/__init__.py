"""``ganpso`` command line: parses and validates, then calls the library.

Every user-facing problem (bad data, bad config, bad checkpoint) ends the command with one line
on stderr and exit code 2; an interrupted training run says how to resume it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings

import ganpso
from ganpso.cli.classifier import add_classifier_commands, run_train
from ganpso.cli.evaluation import add_evaluation_commands, run_calibrate, run_evaluate
from ganpso.cli.gan import add_gan_commands, run_gan_command
from ganpso.cli.inference import add_inference_commands, run_export, run_predict, run_serve
from ganpso.cli.parser import Parser
from ganpso.cli.pipeline import (
    add_pipeline_commands,
    run_compare,
    run_report,
    run_run,
    run_search_command,
)
from ganpso.errors import GanpsoError

DESCRIPTION = """\
GAN-PSO: facial emotion recognition on FER2013 (angry, disgust, fear, happy, sad, surprise,
neutral). Protocol: weights are fitted on Training, every choice is made on PublicTest, and
PrivateTest is evaluated once, for the final report."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ganpso", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"ganpso {ganpso.__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    add_classifier_commands(commands)
    add_evaluation_commands(commands)
    add_inference_commands(commands)
    add_gan_commands(commands)
    add_pipeline_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = "ganpso " + shlex.join(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"
    try:
        handlers = {
            "train": run_train,
            "evaluate": run_evaluate,
            "calibrate": run_calibrate,
            "predict": run_predict,
            "export": run_export,
            "serve": run_serve,
            "gan": run_gan_command,
            "run": run_run,
            "search": run_search_command,
            "compare": run_compare,
            "report": run_report,
        }
        return handlers[args.command](args, command)
    except GanpsoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "interrupted; rerun with --resume to continue from the last finished epoch",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
