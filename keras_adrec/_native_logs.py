"""Keep TensorFlow's native start-up notices off the `adrec` command.

Importing TensorFlow prints absl and CUDA-not-found notices straight to
the stderr file descriptor (`TF_CPP_MIN_LOG_LEVEL` does not reach them).
They are harmless, and they would break the command's promise of one
line per error. Only the `adrec` command silences them; a program that
imports keras_adrec sees TensorFlow's usual output.
"""

import contextlib
import os
import sys

COMMAND = "adrec"


def running_command():
    """True when this process is the `adrec` console command."""
    return os.path.basename(sys.argv[0] if sys.argv else "") == COMMAND


@contextlib.contextmanager
def quiet_native_stderr():
    """Point file descriptor 2 at /dev/null for the block.

    Python exceptions raised meanwhile still propagate normally.
    """
    try:
        saved = os.dup(2)
    except OSError:
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


@contextlib.contextmanager
def quiet_for_command():
    """`quiet_native_stderr` in the `adrec` command; nothing elsewhere."""
    if not running_command():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quiet_native_stderr():
        yield
