"""The process settings that only the `adrec` command makes.

`import keras_adrec` changes nothing global: a program that imports the
library keeps its own backend (`KERAS_BACKEND` or `keras.json`) and sees
TensorFlow's usual logs. The `adrec` command is an application that owns
its process, and before Keras and TensorFlow load it sets:

- `KERAS_BACKEND=tensorflow`. The command's input pipelines (`tf.data`),
  distribution strategies and SavedModel export are TensorFlow's, so the
  command switches itself to TensorFlow whatever a shell or `keras.json`
  chooses for other programs.
- `TF_CPP_MIN_LOG_LEVEL=3`, unless the variable is already set, and
  stderr (file descriptor 2) pointed at /dev/null while Keras and
  TensorFlow load; neither when the command line holds `--debug`.
  TensorFlow's C++ logs (the CUDA notices and `failed call to cuInit` on a
  machine without a GPU, the "Local rendezvous is aborting" block before
  every data error) would break the command's promise of one line per
  error. TensorFlow reads the variable once, when it loads, so a later
  setting does nothing; the notices that its libraries print while they
  load ignore the variable when it is set from inside the process, hence
  the redirection for the duration of the import.

Why the package `__init__` imports Keras inside `prepared()`: the
console script (`adrec = keras_adrec.cli:main`) imports the package
`keras_adrec`, whose `__init__` imports Keras to register the layers for
deserialization, before `keras_adrec.cli` runs, so `main()` comes too
late. `prepared()` acts only when the process is the command (the `adrec`
console script or `python -m keras_adrec.cli`) and neither Keras nor
TensorFlow is loaded yet; anywhere else it does nothing. A separate
top-level entry-point module would avoid the check, at the price of a
second top-level name in the distribution.
"""

import contextlib
import os
import re
import sys

COMMAND = "adrec"
MODULES = ("keras_adrec.cli", "keras_adrec.cli.__main__")


def running_command(argv=None, orig_argv=None):
    """Whether this process is the `adrec` command.

    Args:
        argv: the process's `sys.argv` (default). The console script runs
            with its own path as `argv[0]` (`adrec`, or `adrec.exe` and
            `adrec-script.py` on Windows).
        orig_argv: the interpreter's command line, `sys.orig_argv`
            (default), which names the module of `python -m MODULE`.

    Returns:
        bool.
    """
    argv = sys.argv if argv is None else argv
    orig_argv = sys.orig_argv if orig_argv is None else orig_argv
    first = argv[0] if argv else ""
    if first == "-m":
        # `python -m MODULE` while the module is being imported: the
        # first `-m` of the interpreter's command line names it.
        for index, arg in enumerate(orig_argv):
            if arg == "-m":
                return "".join(orig_argv[index + 1 : index + 2]) in MODULES
            if arg.startswith("-m"):
                return arg[2:] in MODULES
        return False
    script = os.path.basename(first)
    return re.sub(r"(-script\.pyw?|\.exe)$", "", script) == COMMAND


@contextlib.contextmanager
def prepared():
    """Make the command's process settings around the import of Keras.

    Does nothing unless this process is the `adrec` command and neither
    Keras nor TensorFlow is imported yet (see the module docstring).
    Python exceptions raised in the block propagate as usual; their
    traceback prints after stderr is restored.
    """
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        yield
        return
    if not running_command():
        yield
        return
    os.environ["KERAS_BACKEND"] = "tensorflow"
    if "--debug" in sys.orig_argv:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_to_devnull():
        yield


@contextlib.contextmanager
def _stderr_to_devnull():
    """Point file descriptor 2 at /dev/null for the block."""
    try:
        saved = os.dup(2)
    except OSError:
        # No stderr to quiet.
        yield
        return
    with open(os.devnull, "w") as devnull:
        sys.stderr.flush()
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
