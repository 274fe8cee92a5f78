"""The layer and model tests pass on the JAX backend too.

`python -m pytest -q` runs on TensorFlow; this test runs the layer and
model tests again in a child pytest with `KERAS_BACKEND=jax`. A Keras
backend is fixed once per process, so a child process is the only way to
have both in one suite.

By default the child runs `JAX_TESTS`, chosen to add about a minute to the
suite: the Ad-Rec attention, block and interaction, the embedding, the
cross network (whose TFRS reference shows the `tensorflow_only` skip), the
train / save / reload tests of `tests/models/test_any_backend.py` and the
model's mask diagnostics (gradient norms by `jax.grad`).
The baselines' numbers on JAX are checked against TensorFlow's in
`test_cross_backend.py`. `ADREC_JAX_TESTS=all` runs every test
under `tests/layers` and `tests/models` instead (several minutes of CPU;
they passed when this was written). Tests marked `tensorflow_only` are
skipped there with their reason (see `tests/conftest.py`).
"""

import os
import subprocess
import sys

import pytest

from tests.backends.jax_env import jax_environment

pytest.importorskip("jax")

# The Ad-Rec layers' own tests and the model round trip; the baselines'
# numerics on JAX are covered by tests/backends/test_cross_backend.py.
JAX_TESTS = [
    "tests/layers/attention",
    "tests/layers/feature_interaction/test_adrec_interaction.py",
    "tests/models/test_any_backend.py",
    "tests/models/test_mask_diagnostics.py::test_model_mask_diagnostics",
]
ALL_TESTS = ["tests/layers", "tests/models"]


def _root():
    return os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.mark.slow
def test_layer_and_model_tests_pass_on_jax():
    paths = (
        ALL_TESTS if os.environ.get("ADREC_JAX_TESTS") == "all" else (JAX_TESTS)
    )
    # `-n 0`: the child runs in this xdist worker's share of the machine.
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-n", "0"]
    command += ["-p", "no:cacheprovider"]
    # Both tiers: an empty `-m` lifts setup.cfg's `-m "not slow"`.
    command += ["-m", ""]
    command += paths
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=_root(),
        env=jax_environment(os.environ),
        timeout=1800,
    )
    tail = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"pytest on JAX failed:\n{tail}"
    assert " passed" in result.stdout, tail
    assert " failed" not in result.stdout, tail
    # TensorFlow-only tests are skipped by their marker: proof the child
    # ran on JAX.
    assert "TensorFlow only (jax)" in result.stdout, tail
