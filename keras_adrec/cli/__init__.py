"""The `adrec` command: train, evaluate, compare, export and tune.

One module per sub-command (`keras_adrec.cli.train`, ...), each with
`add_parser(subparsers)` and `run(args)`; the jobs they call live in
`keras_adrec.jobs`. Invalid usage (unknown preset, interaction, field, a
bad number or path) prints one line `adrec: error: ...` and exits with
status 2; malformed data prints the reader's one-line error and exits with
status 1. No tracebacks for either.
"""

import sys

from keras_adrec.cli import compare
from keras_adrec.cli import evaluate
from keras_adrec.cli import export
from keras_adrec.cli import train
from keras_adrec.cli import tune
from keras_adrec.cli.arguments import ArgumentParser
from keras_adrec.cli.arguments import UsageError
from keras_adrec.cli.arguments import parse_set
from keras_adrec.data import DataFormatError
from keras_adrec.data import raise_data_format_errors
from keras_adrec.training.model_directory import ModelDirectoryError
from keras_adrec.training.model_directory import OutputInUseError
from keras_adrec.training.model_directory import RunExistsError
from keras_adrec.utils import tune_malloc_for_training

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
        # The command's one process-wide setting, made here and nowhere
        # else: glibc keeps freed memory (see keras_adrec.utils.allocator).
        tune_malloc_for_training()
        try:
            with raise_data_format_errors():
                COMMANDS[args.command].run(args)
        except DataFormatError as error:
            print(f"adrec: data error: {error}", file=sys.stderr)
            return 1
        except (FloatingPointError, ModelDirectoryError) as error:
            # A diverged run or an unreadable model file: one line, exit
            # status 1, like a data error.
            print(f"adrec: error: {error}", file=sys.stderr)
            return 1
        except (OutputInUseError, RunExistsError) as error:
            # Another run took --output after the checks: one line, exit 2.
            raise UsageError(str(error)) from None
    except UsageError as error:
        print(f"adrec: error: {error}", file=sys.stderr)
        return 2
    return 0


__all__ = ["COMMANDS", "UsageError", "build_parser", "main", "parse_set"]
