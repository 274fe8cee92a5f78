"""The `adrec` command: train, evaluate, compare, export and tune.

One module per sub-command (`keras_adrec.cli.train`, ...), each with
`add_parser(subparsers)` and `run(args)`; the jobs they call live in
`keras_adrec.jobs`. Every failure prints one line on stderr and sets the
exit status; no traceback unless `--debug` is given:

- invalid usage (unknown preset, interaction, field, a bad number, path or
  environment): `adrec: error: ...`, status 2;
- malformed data: the reader's error, `adrec: data error: ...`, status 1;
- a diverged run or an unreadable model: `adrec: error: ...`, status 1;
- anything unexpected: `adrec: error: <type>: <message> (run with --debug
  for the traceback)`, status 1.

The command runs on TensorFlow: the `adrec` process switches Keras to it
before Keras loads (see `keras_adrec._command_process`), and `main()`
called from a program whose Keras runs on another backend exits 2 saying
so. `main([...])` returns the exit status for every command line,
`--help` and `--version` included.
"""

import argparse
import sys
import traceback

import keras

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
from keras_adrec.version import __version__

# Sub-command name -> its module.
COMMANDS = {
    "train": train,
    "evaluate": evaluate,
    "compare": compare,
    "export": export,
    "tune": tune,
}

# Known errors -> (exit status, prefix of their one-line report). Another
# run taking --output after the checks is a usage error, like a taken
# --output found by the checks; a diverged run or an unreadable model file
# fails like bad data.
KNOWN_ERRORS = (
    (UsageError, 2, "adrec: error"),
    (OutputInUseError, 2, "adrec: error"),
    (RunExistsError, 2, "adrec: error"),
    (DataFormatError, 1, "adrec: data error"),
    (FloatingPointError, 1, "adrec: error"),
    (ModelDirectoryError, 1, "adrec: error"),
)

DEBUG_HELP = "on an error, print the traceback and TensorFlow's logs"


def build_parser():
    """The `adrec` argument parser with every sub-command."""
    parser = ArgumentParser(
        prog="adrec",
        description="Ad-Rec masked-transformer recommendation models.",
    )
    parser.add_argument(
        "--version", action="version", version=f"adrec {__version__}"
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(subparsers)
    for subparser in subparsers.choices.values():
        # Also after the sub-command; SUPPRESS keeps a sub-command without
        # the flag from resetting `adrec --debug train ...` to False.
        subparser.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help=DEBUG_HELP,
        )
    return parser


def check_backend():
    """`UsageError` unless Keras runs on TensorFlow in this process."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise UsageError(
            f"adrec runs on TensorFlow, but Keras in this process runs on "
            f"{backend} (from KERAS_BACKEND or keras.json): set "
            "KERAS_BACKEND=tensorflow before Keras is imported, or run the "
            "`adrec` command, which does so itself"
        )


def main(argv=None):
    """Entry point of the `adrec` command.

    Args:
        argv: list of str, the arguments after `adrec`; default
            `sys.argv[1:]`.

    Returns:
        int: the exit status (0 success, 1 bad data or a failed run, 2
        invalid usage, 130 interrupted).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        debug = args.debug
        check_backend()
        # The command's one process-wide setting, made here and nowhere
        # else: glibc keeps freed memory (see keras_adrec.utils.allocator).
        # Not under MultiWorkerMirroredStrategy: the tuning runs a dataset,
        # which starts TensorFlow's runtime, after which that strategy can
        # no longer configure its collectives.
        if getattr(args, "strategy", None) != "multiworker":
            tune_malloc_for_training()
        with raise_data_format_errors():
            COMMANDS[args.command].run(args)
    except SystemExit as stop:
        # `--help` and `--version` print and exit through argparse.
        return 0 if stop.code is None else stop.code
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("adrec: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            traceback.print_exc()
        status, line = report(error, debug)
        print(line, file=sys.stderr)
        return status
    return 0


def report(error, debug=False):
    """`(exit status, one-line message)` for `error`."""
    for kind, status, prefix in KNOWN_ERRORS:
        if isinstance(error, kind):
            return status, f"{prefix}: {_one_line(str(error))}"
    what = _first_line(str(error))
    line = f"adrec: error: {type(error).__name__}"
    if what:
        line += f": {what}"
    if not debug:
        line += " (run with --debug for the traceback)"
    return 1, line


def _one_line(text):
    """Our own messages, joined onto one line if they ever span several."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _first_line(text):
    """The line that says what went wrong in a foreign error message.

    TensorFlow's errors from a traced function start with "in user code:"
    and end with the actual message.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0] == "in user code:":
        return lines[-1]
    return lines[0]


__all__ = [
    "COMMANDS",
    "UsageError",
    "build_parser",
    "check_backend",
    "main",
    "parse_set",
    "report",
]
