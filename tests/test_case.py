"""Shared test helpers: closeness, config round trips, saving and export."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np


def assert_allclose(actual, expected, atol=1e-6, rtol=1e-6, msg=""):
    """`np.testing.assert_allclose` on anything `keras.ops` can convert."""
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(actual),
        keras.ops.convert_to_numpy(expected),
        atol=atol,
        rtol=rtol,
        err_msg=msg,
    )


def assert_config_round_trip(layer):
    """`from_config(get_config())` rebuilds a layer with an equal config.

    The config also survives a JSON dump and load, as `.keras` files need.
    Returns the rebuilt layer.
    """
    config = layer.get_config()
    restored_config = json.loads(json.dumps(config))
    clone = layer.__class__.from_config(restored_config)
    assert clone.get_config() == config
    return clone


def assert_serialization_round_trip(layer):
    """`keras.saving.serialize_keras_object` and back gives an equal config."""
    serialized = keras.saving.serialize_keras_object(layer)
    serialized = json.loads(json.dumps(serialized))
    clone = keras.saving.deserialize_keras_object(serialized)
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()
    return clone


def assert_keras_save_load(model, inputs, tmp_path, atol=1e-6):
    """Save `model` as `.keras`, load it and compare predictions.

    Loading uses no `custom_objects`: registration must be enough.
    Returns the reloaded model.
    """
    path = os.path.join(str(tmp_path), "model.keras")
    expected = model.predict(inputs, verbose=0)
    model.save(path)
    reloaded = keras.saving.load_model(path)
    actual = reloaded.predict(inputs, verbose=0)
    _assert_structures_close(actual, expected, atol)
    return reloaded


def _assert_structures_close(actual, expected, atol):
    if isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key in expected:
            _assert_structures_close(actual[key], expected[key], atol)
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _assert_structures_close(a, e, atol)
    else:
        np.testing.assert_allclose(actual, expected, atol=atol, rtol=0)


def functional_model(layer, input_shapes):
    """Wrap `layer` in a functional model over inputs of `input_shapes`.

    `input_shapes` is one shape (without batch) or a list of shapes; a list
    is passed to the layer as a list of tensors.
    """
    if isinstance(input_shapes, list):
        inputs = [keras.Input(shape) for shape in input_shapes]
        outputs = layer(inputs)
    else:
        inputs = keras.Input(input_shapes)
        outputs = layer(inputs)
    return keras.Model(inputs, outputs)


def run_python(code, env=None, timeout=600):
    """Run `code` in a fresh Python process and return its stdout.

    Raises AssertionError with stderr when the process fails.
    """
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if env:
        full_env.update(env)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"subprocess failed ({result.returncode}):\n{result.stderr[-4000:]}"
        )
    return result.stdout
