"""The interaction layers compute the same numbers on TensorFlow and JAX.

`cross_backend_worker` runs once per backend, on JAX in a child process (a
Keras backend is chosen once per process) and on TensorFlow in the test's
own process, with the same weights set from numpy, and writes outputs and
gradients (with respect to the inputs and every trainable weight, by
`tf.GradientTape` and by `jax.grad`) to an npz file.

Tolerance: `np.testing.assert_allclose(rtol=1e-4, atol=1e-6)` on float32
values of order 1. Measured: the largest disagreement needs rtol 8.4e-6 at
atol 1e-6 (a CrossNetwork kernel gradient); the key-bias gradients of the
attention, exactly zero in exact arithmetic (softmax ignores a shift that is
constant along a row), are float32 noise below 4e-7 on both backends.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.backends import cross_backend_worker
from tests.backends.cross_backend_worker import mask_rules
from tests.backends.jax_env import jax_environment

pytest.importorskip("jax")

RTOL, ATOL = 1e-4, 1e-6

# A keep decision flips between backends only if a first-pass probability
# lies within float32 noise (about 1e-6 relative) of its threshold.
MIN_THRESHOLD_MARGIN = 1e-4


def _start_jax_worker(path):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.backends.cross_backend_worker", path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=jax_environment(os.environ),
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    # The JAX worker runs in a child process (a Keras backend is chosen once
    # per process); the TensorFlow half runs in this one, which is already
    # on TensorFlow, while the child imports and compiles.
    import keras

    assert keras.backend.backend() == "tensorflow"
    folder = tmp_path_factory.mktemp("cross_backend")
    paths = {b: str(folder / f"{b}.npz") for b in ("tensorflow", "jax")}
    worker = _start_jax_worker(paths["jax"])
    try:
        cross_backend_worker.main(paths["tensorflow"])
    finally:
        _, stderr = worker.communicate(timeout=600)
    assert worker.returncode == 0, (
        f"jax worker failed ({worker.returncode}):\n{stderr[-4000:]}"
    )
    return {b: np.load(path) for b, path in paths.items()}


def _cases(arrays):
    return sorted({key.split("/")[0] for key in arrays.files if "/" in key})


@pytest.mark.slow
def test_each_worker_ran_on_its_backend(results):
    for backend, arrays in results.items():
        assert str(arrays["backend"]) == backend


@pytest.mark.slow
def test_same_cases_weights_and_arrays(results):
    tf_arrays, jax_arrays = results["tensorflow"], results["jax"]
    tf_keys = {k for k in tf_arrays.files if not k.endswith("/margin")}
    assert tf_keys == set(jax_arrays.files)
    suffixes = ["" if rule is None else f"_{rule}" for rule in mask_rules()]
    expected = {
        f"{prefix}{suffix}"
        for prefix in ("masked_mha", "masked_mha_padding")
        for suffix in suffixes
    } | {
        "adrec_block",
        "adrec_interaction",
        "dot_interaction",
        "factorization_machine",
        "cross_network",
        "autoint_interaction",
    }
    assert set(_cases(tf_arrays)) == expected
    for key in tf_arrays.files:
        if "/weight/" in key:
            np.testing.assert_array_equal(tf_arrays[key], jax_arrays[key])


@pytest.mark.slow
def test_thresholds_are_far_from_every_probability(results):
    arrays = results["tensorflow"]
    margins = [key for key in arrays.files if key.endswith("/margin")]
    assert margins
    for key in margins:
        assert float(arrays[key]) > MIN_THRESHOLD_MARGIN, key


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["output", "d_input", "d_weight"])
def test_outputs_and_gradients_match(results, kind):
    tf_arrays, jax_arrays = results["tensorflow"], results["jax"]
    keys = [k for k in tf_arrays.files if k.split("/")[1:2] == [kind]]
    assert keys
    for key in keys:
        expected, actual = tf_arrays[key], jax_arrays[key]
        assert actual.shape == expected.shape, key
        assert np.all(np.isfinite(expected)), key
        np.testing.assert_allclose(
            actual, expected, rtol=RTOL, atol=ATOL, err_msg=key
        )


@pytest.mark.slow
def test_gradients_are_not_trivially_zero(results):
    # A comparison of zeros with zeros would pass whatever the layers do.
    arrays = results["tensorflow"]
    for case in _cases(arrays):
        inputs = [k for k in arrays.files if k.startswith(f"{case}/d_input/")]
        weights = [k for k in arrays.files if k.startswith(f"{case}/d_weight/")]
        assert np.max(np.abs(arrays[inputs[0]])) > 1e-3, case
        for key in weights:
            if key.endswith("/key/bias"):
                continue  # zero in exact arithmetic, see the module doc
            assert np.max(np.abs(arrays[key])) > 1e-4, key
