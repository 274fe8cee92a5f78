"""Tests of `keras_adrec.layers.MLP` against a numpy forward pass."""

import keras
import numpy as np
import pytest

from keras_adrec.layers import MLP
from tests import test_case


def _numpy_activation(name):
    return {
        None: lambda x: x,
        "linear": lambda x: x,
        "relu": lambda x: np.maximum(x, 0.0),
        "tanh": np.tanh,
        "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    }[name]


def _numpy_mlp(x, weights, activation, final_activation):
    num_layers = len(weights) // 2
    for index in range(num_layers):
        kernel, bias = weights[2 * index], weights[2 * index + 1]
        name = final_activation if index == num_layers - 1 else activation
        x = _numpy_activation(name)(x @ kernel + bias)
    return x


def _randomize(layer, seed=0):
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(size=w.shape).astype("float32") for w in layer.weights]
    )


@pytest.mark.parametrize(
    "activation, final_activation",
    [("relu", None), ("relu", "relu"), ("tanh", "sigmoid")],
)
def test_matches_numpy(activation, final_activation):
    x = np.random.default_rng(1).normal(size=(5, 7)).astype("float32")
    layer = MLP(
        [8, 4, 3], activation=activation, final_activation=final_activation
    )
    layer.build(x.shape)
    _randomize(layer)
    expected = _numpy_mlp(x, layer.get_weights(), activation, final_activation)
    test_case.assert_allclose(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_weight_shapes_and_names():
    layer = MLP([512, 256, 64, 16], final_activation="relu")
    layer.build((None, 13))
    assert [tuple(w.shape) for w in layer.weights] == [
        (13, 512),
        (512,),
        (512, 256),
        (256,),
        (256, 64),
        (64,),
        (64, 16),
        (16,),
    ]
    assert layer.weights[0].path.endswith("dense_0/kernel")
    assert layer.compute_output_shape((None, 13)) == (None, 16)


@pytest.mark.parametrize(
    "activation, final_activation, expected",
    [
        # All-ones kernels, zero biases, input -1: hidden -4, output -12.
        ("linear", None, -12.0),
        ("linear", "relu", 0.0),
        # A hidden ReLU zeroes the hidden layer: output 0.
        ("relu", None, 0.0),
    ],
)
def test_final_activation_is_a_choice(activation, final_activation, expected):
    layer = MLP(
        [3, 2],
        activation=activation,
        final_activation=final_activation,
        kernel_initializer="ones",
    )
    outputs = layer(-np.ones((2, 4), "float32"))
    test_case.assert_allclose(outputs, np.full((2, 2), expected))


def test_dropout_only_in_training():
    x = np.random.default_rng(3).normal(size=(32, 6)).astype("float32")
    layer = MLP([16, 16, 4], dropout=0.5)
    layer.build(x.shape)
    assert len(layer.dropout_layers) == 2
    expected = _numpy_mlp(x, layer.get_weights(), "relu", None)
    test_case.assert_allclose(
        layer(x, training=False), expected, atol=1e-5, rtol=1e-5
    )
    trained = keras.ops.convert_to_numpy(layer(x, training=True))
    assert not np.allclose(trained, expected, atol=1e-3)
    assert MLP([4, 2]).dropout == 0.0
    no_dropout = MLP([4, 2])
    no_dropout.build((None, 3))
    assert no_dropout.dropout_layers == []


def test_rank3_input_uses_last_axis():
    x = np.random.default_rng(4).normal(size=(2, 5, 6)).astype("float32")
    layer = MLP([3, 2])
    layer.build(x.shape)
    expected = _numpy_mlp(x, layer.get_weights(), "relu", None)
    test_case.assert_allclose(layer(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"units": []},
        {"units": 16},
        {"units": [16, 0]},
        {"units": [16, -2]},
        {"units": [2.5]},
        {"units": [True]},
        {"units": [4], "dropout": -0.1},
        {"units": [4], "dropout": 1.0},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="units|dropout"):
        MLP(**kwargs)


def test_config_round_trip():
    layer = MLP(
        (8, 4),
        activation="tanh",
        final_activation="sigmoid",
        dropout=0.1,
        kernel_initializer="he_normal",
        bias_initializer="ones",
        name="top",
    )
    clone = test_case.assert_config_round_trip(layer)
    assert clone.units == [8, 4]
    assert clone.dropout == 0.1
    test_case.assert_serialization_round_trip(layer)


def test_functional_model_trains_and_saves(tmp_path):
    model = test_case.functional_model(
        MLP([8, 1], final_activation="sigmoid", dropout=0.1), (5,)
    )
    x = np.random.default_rng(5).normal(size=(16, 5)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="bce")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    changed = [
        not np.allclose(a, b) for a, b in zip(before, model.get_weights())
    ]
    assert all(changed)
    test_case.assert_keras_save_load(model, x, tmp_path)


def test_numpy_int_units_are_plain_ints_in_config():
    layer = MLP([np.int64(4), np.int32(2)])
    assert layer.get_config()["units"] == [4, 2]
    assert all(type(u) is int for u in layer.units)
    test_case.assert_config_round_trip(layer)
