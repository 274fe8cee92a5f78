import keras
import numpy as np
import pytest

from keras_adrec.layers.sequence import MultiHeadAttentionContext
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


def _randomize_biases(attention):
    rng = np.random.default_rng(1)
    for dense in (
        attention._query_dense,
        attention._key_dense,
        attention._value_dense,
        attention._output_dense,
    ):
        dense.bias.assign(rng.normal(size=dense.bias.shape))


@pytest.mark.parametrize(
    "kwargs, width",
    [
        ({"num_heads": 2}, 6),
        ({"num_heads": 3, "key_dim": 4}, 6),
        ({"num_heads": 1, "output_dim": 9}, 9),
    ],
)
def test_matches_numpy_reference(kwargs, width):
    candidate, history = _inputs()
    layer = MultiHeadAttentionContext(**kwargs)
    layer(candidate, history)
    _randomize_biases(layer.attention)
    output = layer(candidate, history)
    assert output.shape == (4, width)
    expected = ref.multi_head_attention(
        layer.attention, candidate[:, None, :], history
    )[:, 0]
    assert_allclose(output, expected, atol=1e-5, rtol=1e-5)


def test_default_head_size_is_event_width():
    candidate, history = _inputs(width=5)
    layer = MultiHeadAttentionContext()
    layer(candidate, history)
    assert tuple(layer.attention._query_dense.kernel.shape) == (5, 8, 5)


def test_context_ignores_history_order():
    # One query over unmasked keys: permuting the history changes nothing.
    candidate, history = _inputs()
    layer = MultiHeadAttentionContext(num_heads=2)
    permuted = history[:, ::-1]
    assert_allclose(
        layer(candidate, history), layer(candidate, permuted), atol=1e-6
    )


def test_dropout_only_in_training():
    candidate, history = _inputs()
    layer = MultiHeadAttentionContext(num_heads=2, dropout=0.5)
    inference = layer(candidate, history, training=False)
    assert_allclose(inference, layer(candidate, history), atol=1e-6)
    trained = layer(candidate, history, training=True)
    assert not np.allclose(np.asarray(trained), np.asarray(inference))


def test_functional_model_and_saving(tmp_path):
    candidate, history = _inputs()
    inputs = [keras.Input((6,)), keras.Input((5, 6))]
    outputs = MultiHeadAttentionContext(num_heads=2)(*inputs)
    assert tuple(outputs.shape) == (None, 6)
    model = keras.Model(inputs, outputs)
    assert_keras_save_load(model, [candidate, history], tmp_path)


def test_config_round_trip():
    layer = MultiHeadAttentionContext(
        num_heads=3,
        key_dim=4,
        output_dim=7,
        dropout=0.1,
        use_bias=False,
        name="mha",
    )
    clone = assert_config_round_trip(layer)
    assert clone.key_dim == 4 and clone.output_dim == 7
    assert_serialization_round_trip(layer)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0}, "`num_heads` must be a positive int"),
        ({"key_dim": -1}, "`key_dim` must be `None` or a positive int"),
        ({"output_dim": 2.0}, "`output_dim` must be `None` or a positive"),
        ({"dropout": 1.0}, r"`dropout` must be in \[0, 1\)"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttentionContext(**kwargs)


def test_invalid_shapes():
    with pytest.raises(ValueError, match="candidate to have shape"):
        MultiHeadAttentionContext()(np.zeros((2, 1, 4)), np.zeros((2, 3, 4)))
