"""Tests of `keras_adrec.layers.CrossNetwork` (DCN-v2's cross network).

References: a numpy forward pass of DCN-v2 eq. 1-2, `keras_rs.layers.
FeatureCross` stacked by hand, and TensorFlow Recommenders'
`tfrs.layers.dcn.Cross` run in a subprocess (it needs `tf-keras`, selected
with `TF_USE_LEGACY_KERAS=1`, which cannot share a process with Keras 3).
"""

import json
import os

import keras
import keras_rs
import numpy as np
import pytest

from keras_adrec.layers import CrossNetwork
from tests import test_case

NUM_FEATURES = 3
DIM = 4


def _features(batch=3, num=NUM_FEATURES, dim=DIM, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, dim)).astype("float32") for _ in range(num)]


def _randomized_layer(seed=0, **kwargs):
    """A built `CrossNetwork` whose every weight (biases too) is random."""
    layer = CrossNetwork(**kwargs)
    layer.build([(None, DIM)] * NUM_FEATURES)
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            (0.3 * rng.normal(size=w.shape)).astype("float32")
            for w in layer.weights
        ]
    )
    return layer


def _cross_weights(cross):
    """`(U or None, W or V, bias or None)` of one keras-rs FeatureCross."""
    down = None
    if cross.projection_dim is not None:
        down = keras.ops.convert_to_numpy(cross.down_proj_dense.kernel)
    kernel = keras.ops.convert_to_numpy(cross.dense.kernel)
    bias = None
    if cross.use_bias:
        bias = keras.ops.convert_to_numpy(cross.dense.bias)
    return down, kernel, bias


NUMPY_ACTIVATIONS = {
    None: lambda x: x,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}


def _numpy_cross_network(x0, layer_weights, diag_scale, pre_activation=None):
    """x_{l+1} = x0 * (f(x_l W (+ b)) + s x_l) + x_l, W = U V when low rank."""
    x = x0
    for down, kernel, bias in layer_weights:
        projected = x @ down if down is not None else x
        product = projected @ kernel
        if bias is not None:
            product = product + bias
        product = NUMPY_ACTIVATIONS[pre_activation](product)
        product = product + diag_scale * x
        x = x0 * product + x
    return x


GRID = [
    {"num_layers": 1},
    {"num_layers": 2},
    {"num_layers": 3, "projection_dim": 2},
    {"num_layers": 2, "use_bias": False},
    {"num_layers": 2, "projection_dim": 5, "diag_scale": 0.5},
    {"num_layers": 2, "pre_activation": "tanh"},
    {
        "num_layers": 2,
        "projection_dim": 2,
        "diag_scale": 0.5,
        "pre_activation": "relu",
    },
]


@pytest.mark.parametrize("kwargs", GRID)
def test_matches_numpy(kwargs):
    features = _features()
    layer = _randomized_layer(**kwargs)
    expected = _numpy_cross_network(
        np.concatenate(features, axis=-1),
        [_cross_weights(c) for c in layer.cross_layers],
        kwargs.get("diag_scale", 0.0),
        kwargs.get("pre_activation"),
    )
    outputs = layer(features)
    test_case.assert_allclose(outputs, expected, atol=1e-5, rtol=1e-5)
    assert tuple(outputs.shape) == layer.compute_output_shape(
        [f.shape for f in features]
    )


@pytest.mark.parametrize("kwargs", GRID)
def test_matches_keras_rs_feature_cross_stack(kwargs):
    features = _features(seed=1)
    layer = _randomized_layer(seed=1, **kwargs)
    x0 = np.concatenate(features, axis=-1)
    x = x0
    for ours in layer.cross_layers:
        reference = keras_rs.layers.FeatureCross(
            projection_dim=kwargs.get("projection_dim"),
            diag_scale=kwargs.get("diag_scale", 0.0),
            use_bias=kwargs.get("use_bias", True),
            pre_activation=kwargs.get("pre_activation"),
        )
        reference(x0, x0)
        reference.set_weights(ours.get_weights())
        x = reference(x0, x)
    test_case.assert_allclose(layer(features), x, atol=1e-6)


def test_weight_shapes():
    full = CrossNetwork(num_layers=2)
    full.build((None, NUM_FEATURES, DIM))
    assert [tuple(w.shape) for w in full.weights] == [(12, 12), (12,)] * 2
    low = CrossNetwork(num_layers=1, projection_dim=3, use_bias=False)
    low.build((None, NUM_FEATURES, DIM))
    assert [tuple(w.shape) for w in low.weights] == [(12, 3), (3, 12)]


def test_list_and_stacked_inputs_agree():
    features = _features(seed=2)
    layer = _randomized_layer(seed=2)
    test_case.assert_allclose(
        layer(features), layer(np.stack(features, axis=1))
    )


# One subprocess runs TFRS for every configuration below.
TFRS_GRID = {
    "full": {"num_layers": 2},
    "low_rank": {"num_layers": 2, "projection_dim": 3},
    "no_bias_diag": {"num_layers": 3, "use_bias": False, "diag_scale": 0.5},
}

TFRS_SCRIPT = """
import json
import os
import sys

import numpy as np

try:
    import tensorflow as tf
    import tensorflow_recommenders as tfrs
except ImportError as error:
    print("SKIP " + repr(error))
    sys.exit(0)

folder = {folder!r}
configs = json.load(open(os.path.join(folder, "configs.json")))
x0 = tf.constant(np.load(os.path.join(folder, "x0.npy")))
for name, config in configs.items():
    x = x0
    for index in range(config["num_layers"]):
        cross = tfrs.layers.dcn.Cross(
            projection_dim=config.get("projection_dim"),
            diag_scale=config.get("diag_scale", 0.0),
            use_bias=config.get("use_bias", True),
        )
        cross(x0, x0)
        prefix = os.path.join(folder, f"{{name}}_{{index}}_")
        if config.get("projection_dim"):
            cross._dense_u.kernel.assign(np.load(prefix + "down.npy"))
            dense = cross._dense_v
        else:
            dense = cross._dense
        dense.kernel.assign(np.load(prefix + "kernel.npy"))
        if config.get("use_bias", True):
            dense.bias.assign(np.load(prefix + "bias.npy"))
        x = cross(x0, x)
    np.save(os.path.join(folder, f"{{name}}_out.npy"), x.numpy())
print("tf.keras is " + tf.keras.__name__)
"""


@pytest.fixture(scope="module")
def tfrs_outputs(tmp_path_factory):
    """Our outputs and TFRS's, per `TFRS_GRID` name, from one subprocess."""
    folder = str(tmp_path_factory.mktemp("tfrs_cross"))
    features = _features(batch=4, seed=3)
    x0 = np.concatenate(features, axis=-1)
    np.save(os.path.join(folder, "x0.npy"), x0)
    with open(os.path.join(folder, "configs.json"), "w") as file:
        json.dump(TFRS_GRID, file)
    ours = {}
    for name, kwargs in TFRS_GRID.items():
        layer = _randomized_layer(seed=4, **kwargs)
        ours[name] = keras.ops.convert_to_numpy(layer(features))
        for index, cross in enumerate(layer.cross_layers):
            down, kernel, bias = _cross_weights(cross)
            prefix = os.path.join(folder, f"{name}_{index}_")
            np.save(prefix + "kernel.npy", kernel)
            if down is not None:
                np.save(prefix + "down.npy", down)
            if bias is not None:
                np.save(prefix + "bias.npy", bias)
    stdout = test_case.run_python(
        TFRS_SCRIPT.format(folder=folder),
        env={"TF_USE_LEGACY_KERAS": "1"},
        timeout=300,
    )
    if stdout.startswith("SKIP"):
        pytest.skip(
            "tensorflow_recommenders (with tf-keras, TF_USE_LEGACY_KERAS=1) "
            f"cannot be imported in a subprocess: {stdout.strip()}"
        )
    assert "tf.keras is tf_keras" in stdout, stdout
    theirs = {
        name: np.load(os.path.join(folder, f"{name}_out.npy"))
        for name in TFRS_GRID
    }
    return ours, theirs


@pytest.mark.tensorflow_only(
    reason="TFRS is a TensorFlow library (run on tf-keras in a subprocess); "
    "tests/backends/test_cross_backend.py ties the JAX numbers to TF's"
)
@pytest.mark.parametrize("name", sorted(TFRS_GRID))
def test_matches_tfrs_cross(tfrs_outputs, name):
    ours, theirs = tfrs_outputs
    assert ours[name].shape == (4, NUM_FEATURES * DIM)
    test_case.assert_allclose(ours[name], theirs[name], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_layers": 0}, "num_layers"),
        ({"num_layers": -1}, "num_layers"),
        ({"num_layers": 1.5}, "num_layers"),
        ({"projection_dim": 0}, "projection_dim"),
        ({"projection_dim": 2.0}, "projection_dim"),
        ({"diag_scale": -0.1}, "diag_scale"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossNetwork(**kwargs)


@pytest.mark.parametrize(
    "inputs, match",
    [
        ([np.zeros((2, 4), "float32")], "at least 2"),
        ([np.zeros((2, 4)), np.zeros((2, 3))], "same size D"),
        (np.zeros((2, 4), "float32"), "Received shape"),
    ],
)
def test_invalid_inputs(inputs, match):
    with pytest.raises(ValueError, match=match):
        CrossNetwork()(inputs)


def test_config_round_trip():
    layer = CrossNetwork(
        num_layers=3,
        projection_dim=4,
        diag_scale=0.25,
        use_bias=False,
        pre_activation="tanh",
        kernel_initializer="he_normal",
        bias_initializer="ones",
        kernel_regularizer="l2",
        bias_regularizer="l1",
    )
    clone = test_case.assert_config_round_trip(layer)
    assert (clone.num_layers, clone.projection_dim) == (3, 4)
    assert clone.pre_activation is keras.activations.tanh
    test_case.assert_serialization_round_trip(layer)


@pytest.mark.parametrize("projection_dim", [None, 2])
def test_functional_model_trains_and_saves(projection_dim, tmp_path):
    # The `.keras` round trip also checks that every FeatureCross sub-layer
    # has its weights right after `build()` (else loading drops them).
    features = _features(batch=16, seed=5)
    model = test_case.functional_model(
        CrossNetwork(projection_dim=projection_dim, bias_initializer="ones"),
        [(DIM,)] * NUM_FEATURES,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(features, np.zeros((16, 12)), batch_size=16, verbose=0)
    assert all(
        not np.allclose(a, b) for a, b in zip(before, model.get_weights())
    )
    test_case.assert_keras_save_load(model, features, tmp_path)


def test_numpy_int_arguments():
    layer = CrossNetwork(num_layers=np.int64(2), projection_dim=np.int64(3))
    assert (layer.num_layers, layer.projection_dim) == (2, 3)
    test_case.assert_config_round_trip(layer)
