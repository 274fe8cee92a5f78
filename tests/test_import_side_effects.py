"""`import keras_adrec` changes nothing global (STYLE.md, "A library
changes nothing it was not asked to").

Each check runs in a fresh interpreter, started without `KERAS_BACKEND`
and `TF_CPP_MIN_LOG_LEVEL` (which the suite's conftest sets) and with its
own `keras.json`, so that an import which set either variable, chose the
backend, redirected stderr, retuned the allocator or TensorFlow would show.
That the `adrec` command, and only it, switches its own process to
TensorFlow and quiets TensorFlow's logs is checked in tests/cli/test_main.py.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

# What the child prints as JSON on its last stdout line: the process-wide
# state a library could change.
SNAPSHOT = """
import ctypes, json, logging, os, signal, sys, warnings

import numpy as np

mallopt_lookups = []
_getitem = ctypes.CDLL.__getitem__


def _recording_getitem(self, name):
    # Any glibc allocator tuning goes through a ctypes lookup of these.
    if name in ("mallopt", "malloc_trim"):
        mallopt_lookups.append(name)
    return _getitem(self, name)


ctypes.CDLL.__getitem__ = _recording_getitem


def open_files():
    # Descriptor -> (what it points at, device, inode): a redirected
    # stderr keeps its number but not its target.
    files = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            stat = os.fstat(int(name))
        except OSError:  # the descriptor listdir itself used
            continue
        files[name] = [os.readlink(f"/proc/self/fd/{name}"),
                       stat.st_dev, stat.st_ino]
    return files


def snapshot():
    import keras
    import tensorflow as tf

    return {
        "environ": dict(os.environ),
        "open_files": open_files(),
        "backend": keras.backend.backend(),
        "keras": [keras.config.floatx(), keras.config.epsilon(),
                  keras.config.image_data_format(),
                  keras.config.dtype_policy().name],
        "tf_threads": [
            tf.config.threading.get_inter_op_parallelism_threads(),
            tf.config.threading.get_intra_op_parallelism_threads(),
        ],
        "tf_logger_level": tf.get_logger().level,
        "tf_devices": [
            d.name for d in tf.config.get_visible_devices()],
        "tf_config": [
            tf.config.get_soft_device_placement(),
            tf.config.optimizer.get_jit(),
            tf.config.optimizer.get_experimental_options(),
            tf.config.functions_run_eagerly(),
            tf.config.experimental.get_device_policy(),
            tf.config.experimental.get_synchronous_execution(),
            tf.config.experimental.tensor_float_32_execution_enabled(),
        ],
        "python": [
            repr(warnings.filters),
            logging.getLogger().level,
            len(logging.getLogger().handlers),
            repr(signal.getsignal(signal.SIGINT)),
            repr(signal.getsignal(signal.SIGTERM)),
            repr(sys.excepthook),
            np.geterr(),
        ],
        "mallopt_lookups": list(mallopt_lookups),
    }
"""


def _run(code, keras_home, backend_in_json="tensorflow", env=None):
    """Run `code` after `SNAPSHOT` in a fresh interpreter; its last
    stdout line, parsed as JSON."""
    (keras_home / "keras.json").write_text(
        json.dumps({"backend": backend_in_json})
    )
    child_env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")
    }
    child_env.update(KERAS_HOME=str(keras_home), **(env or {}))
    result = subprocess.run(
        [sys.executable, "-c", SNAPSHOT + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="lists open files in /proc"
)
def test_import_changes_nothing_global(tmp_path):
    """Everything a library could retune, read once Keras and TensorFlow
    are loaded and again after `import keras_adrec` and its packages."""
    before, after = _run(
        """
        import importlib

        before = snapshot()
        import keras_adrec

        for name in ("data", "training", "export", "tuning", "jobs", "cli"):
            importlib.import_module(f"keras_adrec.{name}")
        print(json.dumps([before, snapshot()]))
        """,
        tmp_path,
    )
    assert after["environ"] == before["environ"]
    assert after["open_files"] == before["open_files"]
    assert after["backend"] == before["backend"] == "tensorflow"
    for key in ("keras", "tf_threads", "tf_logger_level", "tf_devices"):
        assert after[key] == before[key], key
    assert after["tf_config"] == before["tf_config"]
    assert after["python"] == before["python"]
    assert after["mallopt_lookups"] == []


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="needs JAX installed"
)
def test_import_keeps_the_users_backend(tmp_path):
    """In a fresh process, `import keras_adrec` first sets what `import
    keras` alone sets, and Keras runs on the backend of `keras.json`."""
    show = """
        import {module}
        import keras

        print(json.dumps([keras.backend.backend(), dict(os.environ)]))
        """
    keras_backend, keras_environ = _run(
        show.format(module="keras"), tmp_path, backend_in_json="jax"
    )
    ours_backend, ours_environ = _run(
        show.format(module="keras_adrec"), tmp_path, backend_in_json="jax"
    )
    assert keras_backend == ours_backend == "jax"
    assert "KERAS_BACKEND" not in ours_environ
    assert ours_environ == keras_environ
