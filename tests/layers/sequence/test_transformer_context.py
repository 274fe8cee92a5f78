import keras
import numpy as np
import pytest

from keras_adrec.layers.sequence import TransformerContext
from tests.layers.sequence import numpy_references as ref
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip
from tests.test_case import assert_keras_save_load
from tests.test_case import assert_serialization_round_trip


def _inputs(batch=4, length=5, width=6, seed=0):
    rng = np.random.default_rng(seed)
    candidate = rng.normal(size=(batch, width)).astype("float32")
    history = rng.normal(size=(batch, length, width)).astype("float32")
    return candidate, history


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"norm_first": True, "pooling": "mean"},
        {"num_layers": 2, "num_heads": 3, "key_dim": 2, "ffn_dim": 5},
    ],
)
def test_matches_numpy_reference(kwargs):
    candidate, history = _inputs()
    layer = TransformerContext(**kwargs)
    layer(candidate, history)
    rng = np.random.default_rng(3)
    for weight in layer.weights:  # non-trivial biases, gammas and betas
        if "bias" in weight.path or "beta" in weight.path:
            weight.assign(rng.normal(size=weight.shape) * 0.3)
        if "gamma" in weight.path:
            weight.assign(1.0 + rng.normal(size=weight.shape) * 0.3)
    output = layer(candidate, history)
    assert output.shape == (4, 6)
    expected = ref.transformer_context(layer, candidate, history)
    assert_allclose(output, expected, atol=1e-4, rtol=1e-4)


def test_default_key_dim_rounds_up():
    candidate, history = _inputs(width=15)
    layer = TransformerContext(num_heads=2)
    layer(candidate, history)
    kernel = layer.attention_layers[0]._query_dense.kernel
    assert tuple(kernel.shape) == (15, 2, 8)


def test_candidate_output_ignores_history_order():
    # No positional embedding: the candidate's output is a function of the
    # set of history events.
    candidate, history = _inputs()
    layer = TransformerContext(num_layers=2)
    assert_allclose(
        layer(candidate, history),
        layer(candidate, history[:, ::-1]),
        atol=1e-5,
    )


def test_dropout_only_in_training():
    candidate, history = _inputs()
    layer = TransformerContext(dropout=0.5)
    inference = layer(candidate, history)
    assert_allclose(layer(candidate, history, training=False), inference)
    trained = layer(candidate, history, training=True)
    assert not np.allclose(np.asarray(trained), np.asarray(inference))


def test_functional_model_and_saving(tmp_path):
    candidate, history = _inputs()
    inputs = [keras.Input((6,)), keras.Input((5, 6))]
    outputs = TransformerContext(norm_first=True)(*inputs)
    assert tuple(outputs.shape) == (None, 6)
    model = keras.Model(inputs, outputs)
    assert_keras_save_load(model, [candidate, history], tmp_path)


def test_config_round_trip():
    layer = TransformerContext(
        num_layers=2,
        num_heads=3,
        key_dim=4,
        ffn_dim=32,
        dropout=0.1,
        norm_first=True,
        pooling="mean",
        activation="gelu",
        name="transformer",
    )
    clone = assert_config_round_trip(layer)
    assert clone.pooling == "mean" and clone.norm_first
    assert_serialization_round_trip(layer)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_layers": 0}, "`num_layers` must be a positive int"),
        ({"num_heads": -2}, "`num_heads` must be a positive int"),
        ({"key_dim": 0}, "`key_dim` must be `None` or a positive int"),
        ({"ffn_dim": None}, "`ffn_dim` must be a positive int"),
        ({"dropout": -0.1}, r"`dropout` must be in \[0, 1\)"),
        ({"pooling": "max"}, "`pooling` must be one of"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerContext(**kwargs)
