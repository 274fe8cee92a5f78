"""Tests of `keras_adrec.layers.FactorizationMachine` (DeepFM's FM part)."""

import keras
import numpy as np
import pytest

from keras_adrec.layers import FactorizationMachine
from tests import test_case


def _features(batch=3, num=5, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, dim)).astype("float32") for _ in range(num)]


def _numpy_fm(features, kernel, bias, first_order, embeddings):
    """The FM terms by their definition: explicit pairs, explicit sums."""
    pairwise = np.zeros((features[0].shape[0], 1))
    for i in range(len(features)):
        for j in range(i + 1, len(features)):
            pairwise[:, 0] += np.sum(features[i] * features[j], axis=-1)
    flat = np.concatenate(features, axis=-1)
    parts = []
    if first_order:
        parts.append(flat @ kernel + bias)
    parts.append(pairwise)
    if embeddings:
        parts.append(flat)
    return np.concatenate(parts, axis=-1)


@pytest.mark.parametrize("include_first_order", [False, True])
@pytest.mark.parametrize("include_embeddings", [False, True])
def test_matches_numpy(include_first_order, include_embeddings):
    features = _features()
    layer = FactorizationMachine(
        include_first_order=include_first_order,
        include_embeddings=include_embeddings,
        bias_initializer="ones",
    )
    outputs = layer(features)
    kernel = bias = None
    if include_first_order:
        kernel, bias = layer.get_weights()
    else:
        assert layer.weights == []
    expected = _numpy_fm(
        features, kernel, bias, include_first_order, include_embeddings
    )
    test_case.assert_allclose(outputs, expected, atol=1e-5, rtol=1e-5)
    assert tuple(outputs.shape) == layer.compute_output_shape(
        [f.shape for f in features]
    )


def test_hand_computed_second_order():
    # v1 = (1, 2), v2 = (3, -1), v3 = (0, 5):
    # <v1,v2> + <v1,v3> + <v2,v3> = 1 + 10 - 5 = 6.
    features = [
        np.array([[1.0, 2.0]], "float32"),
        np.array([[3.0, -1.0]], "float32"),
        np.array([[0.0, 5.0]], "float32"),
    ]
    layer = FactorizationMachine(
        include_first_order=False, include_embeddings=False
    )
    test_case.assert_allclose(layer(features), [[6.0]])


def test_first_order_weights_and_stacked_input():
    features = _features(seed=1)
    layer = FactorizationMachine()
    outputs = layer(np.stack(features, axis=1))
    assert [tuple(w.shape) for w in layer.weights] == [(20, 1), (1,)]
    test_case.assert_allclose(outputs, layer(features))


def test_criteo_output_size():
    layer = FactorizationMachine()
    assert layer.compute_output_shape((None, 27, 16)) == (None, 2 + 432)


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
        FactorizationMachine()(inputs)


def test_config_round_trip():
    layer = FactorizationMachine(
        include_first_order=False,
        include_embeddings=False,
        kernel_initializer="he_normal",
    )
    clone = test_case.assert_config_round_trip(layer)
    assert not clone.include_first_order and not clone.include_embeddings
    test_case.assert_serialization_round_trip(layer)


def test_functional_model_trains_and_saves(tmp_path):
    features = _features(batch=16, seed=2)
    model = test_case.functional_model(FactorizationMachine(), [(4,)] * 5)
    assert model.output_shape == (None, 22)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(features, np.ones((16, 22)), batch_size=16, verbose=0)
    assert all(
        not np.allclose(a, b) for a, b in zip(before, model.get_weights())
    )
    test_case.assert_keras_save_load(model, features, tmp_path)
