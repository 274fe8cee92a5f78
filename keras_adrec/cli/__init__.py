"""The `adrec` command: train, evaluate, compare, export and tune.

One module per sub-command (`keras_adrec.cli.train`, ...), each with
`add_parser(subparsers)` and `run(args)`; the jobs they call live in
`keras_adrec.jobs`. Invalid usage (unknown preset, interaction, field, a
bad number or path) prints one line `adrec: error: ...` and exits with
status 2; malformed data prints the reader's one-line error and exits with
status 1. No tracebacks for either.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_adrec.cli import compare  # noqa: E402
from keras_adrec.cli import evaluate  # noqa: E402
from keras_adrec.cli import export  # noqa: E402
from keras_adrec.cli import train  # noqa: E402
from keras_adrec.cli import tune  # noqa: E402
from keras_adrec.cli.arguments import ArgumentParser  # noqa: E402
from keras_adrec.cli.arguments import UsageError  # noqa: E402
from keras_adrec.cli.arguments import parse_set  # noqa: E402
from keras_adrec.data import DataFormatError  # noqa: E402
from keras_adrec.data import raise_data_format_errors  # noqa: E402

# Sub-command name -> its module.
COMMANDS = {
    "train": train,
    "evaluate": evaluate,
    "compare": compare,
    "export": export,
    "tune": tune,
}


def build_parser():
    """The `adrec` argument parser with every sub-command."""
    parser = ArgumentParser(
        prog="adrec",
        description="Ad-Rec masked-transformer recommendation models.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(subparsers)
    return parser


def main(argv=None):
    """Entry point of the `adrec` command; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        try:
            with raise_data_format_errors():
                COMMANDS[args.command].run(args)
        except DataFormatError as error:
            print(f"adrec: data error: {error}", file=sys.stderr)
            return 1
        except FloatingPointError as error:
            # A diverged run: one line, exit status 1, like a data error.
            print(f"adrec: error: {error}", file=sys.stderr)
            return 1
    except UsageError as error:
        print(f"adrec: error: {error}", file=sys.stderr)
        return 2
    return 0


__all__ = ["COMMANDS", "UsageError", "build_parser", "main", "parse_set"]
