"""Tests of `keras_adrec.layers.DotInteraction` (DLRM's interaction)."""

import keras
import keras_rs
import numpy as np
import pytest

from keras_adrec.layers import DotInteraction
from tests import test_case


def _features(batch=3, num=5, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, dim)).astype("float32") for _ in range(num)]


def _numpy_dot_interaction(features, self_interaction=False):
    """DLRM's order: for i in range(F), for j in range(i) (+ i itself)."""
    columns = []
    for i in range(len(features)):
        for j in range(i + 1 if self_interaction else i):
            columns.append(np.sum(features[i] * features[j], axis=-1))
    return np.stack(columns, axis=-1)


@pytest.mark.parametrize("self_interaction", [False, True])
def test_matches_numpy_lower_triangle(self_interaction):
    features = _features()
    layer = DotInteraction(self_interaction=self_interaction)
    expected = _numpy_dot_interaction(features, self_interaction)
    test_case.assert_allclose(layer(features), expected, atol=1e-5)


def test_documented_pair_index():
    features = _features(num=6)
    outputs = keras.ops.convert_to_numpy(DotInteraction()(features))
    for i in range(6):
        for j in range(i):
            np.testing.assert_allclose(
                outputs[:, i * (i - 1) // 2 + j],
                np.sum(features[i] * features[j], axis=-1),
                atol=1e-5,
            )


@pytest.mark.parametrize("self_interaction", [False, True])
@pytest.mark.parametrize("skip_gather", [False, True])
def test_matches_keras_rs(self_interaction, skip_gather):
    features = _features(seed=1)
    layer = DotInteraction(
        self_interaction=self_interaction, skip_gather=skip_gather
    )
    reference = keras_rs.layers.DotInteraction(
        self_interaction=self_interaction, skip_gather=skip_gather
    )
    outputs = layer(features)
    test_case.assert_allclose(outputs, reference(features))
    assert tuple(outputs.shape) == layer.compute_output_shape(
        [f.shape for f in features]
    )


def test_list_and_stacked_inputs_agree():
    features = _features(seed=2)
    layer = DotInteraction()
    test_case.assert_allclose(
        layer(features), layer(np.stack(features, axis=1))
    )


def test_criteo_output_size():
    layer = DotInteraction()
    # RM1: the dense vector and 26 embeddings of size 16.
    assert layer.compute_output_shape((None, 27, 16)) == (None, 351)
    assert layer(np.zeros((2, 27, 16), "float32")).shape == (2, 351)


@pytest.mark.parametrize(
    "inputs, match",
    [
        ([np.zeros((2, 4), "float32")], "at least 2"),
        (np.zeros((2, 1, 4), "float32"), "at least 2"),
        ([np.zeros((2, 4)), np.zeros((2, 3))], "same size D"),
        ([np.zeros((2, 4)), np.zeros((2, 3, 4))], r"\[batch_size, D\]"),
        (np.zeros((2, 4), "float32"), "Received shape"),
    ],
)
def test_invalid_inputs(inputs, match):
    with pytest.raises(ValueError, match=match):
        DotInteraction()(inputs)


def test_config_round_trip():
    layer = DotInteraction(self_interaction=True, skip_gather=True)
    clone = test_case.assert_config_round_trip(layer)
    assert clone.self_interaction and clone.skip_gather
    test_case.assert_serialization_round_trip(layer)


@pytest.mark.parametrize("stacked", [False, True])
def test_functional_model_save_load(stacked, tmp_path):
    features = _features(seed=3)
    if stacked:
        model = test_case.functional_model(DotInteraction(), (5, 4))
        inputs = np.stack(features, axis=1)
    else:
        model = test_case.functional_model(DotInteraction(), [(4,)] * 5)
        inputs = features
    assert model.output_shape == (None, 10)
    test_case.assert_allclose(
        model.predict(inputs, verbose=0),
        _numpy_dot_interaction(features),
        atol=1e-5,
    )
    test_case.assert_keras_save_load(model, inputs, tmp_path)
