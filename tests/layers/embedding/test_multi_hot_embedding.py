import textwrap

import keras
import numpy as np
import pytest

from keras_adrec.layers import MultiHotEmbedding
from tests import test_case

BAGS = np.array(
    [
        [[1, 2, -1], [4, 0, 3]],
        [[-1, -1, -1], [2, -1, -1]],  # an empty bag, a bag of one
    ],
    "int32",
)


def _tables(layer):
    table = keras.ops.convert_to_numpy(layer.tables.embeddings)
    tables, start = [], 0
    for size in layer.vocabulary_sizes:
        tables.append(table[start : start + size])
        start += size
    return tables


def _numpy_pool(layer, bags, query=None):
    """Reference: a Python loop over each bag's real ids."""
    tables = _tables(layer)
    dim = layer.embedding_dim
    out = np.zeros(bags.shape[:2] + (dim,))
    for b in range(bags.shape[0]):
        for f in range(bags.shape[1]):
            ids = [i for i in bags[b, f] if i != -1]
            if not ids:
                continue
            vectors = tables[f][ids]
            if layer.combiner == "sum":
                out[b, f] = vectors.sum(0)
            elif layer.combiner == "mean":
                out[b, f] = vectors.mean(0)
            else:
                scores = vectors @ query[f] / np.sqrt(dim)
                weights = np.exp(scores - scores.max())
                out[b, f] = (weights / weights.sum()) @ vectors
    return out


@pytest.mark.parametrize("combiner", ["sum", "mean", "attention"])
def test_pooling_matches_numpy(combiner):
    keras.utils.set_random_seed(0)
    layer = MultiHotEmbedding([3, 5], 4, combiner=combiner)
    layer.build(BAGS.shape)
    query = None
    if combiner == "attention":
        # A non-zero query, so the weights differ from the mean's.
        query = np.random.default_rng(0).normal(size=(2, 4)) * 3
        layer.query.assign(query.astype("float32"))
    out = keras.ops.convert_to_numpy(layer(BAGS))
    assert out.shape == (2, 2, 4)
    test_case.assert_allclose(
        out, _numpy_pool(layer, BAGS, query), atol=1e-5, rtol=1e-5
    )
    # The empty bag pools to zero.
    np.testing.assert_array_equal(out[1, 0], 0.0)


def test_attention_starts_as_the_mean():
    layer = MultiHotEmbedding([3, 5], 4, combiner="attention")
    mean = MultiHotEmbedding([3, 5], 4, combiner="mean")
    layer.build(BAGS.shape)
    mean.build(BAGS.shape)
    mean.tables.embeddings.assign(layer.tables.embeddings)
    test_case.assert_allclose(layer(BAGS), mean(BAGS), atol=1e-6)
    assert tuple(layer.query.shape) == (2, 4)


def test_padding_adds_nothing():
    layer = MultiHotEmbedding([3, 5], 4, combiner="sum")
    short = BAGS[:, :, :2]
    longer = np.concatenate([BAGS, np.full((2, 2, 4), -1, "int32")], -1)
    layer.build(BAGS.shape)
    test_case.assert_allclose(layer(longer), layer(BAGS))
    # Without the third slot, bag [4, 0, 3] loses id 3: a real id counts.
    assert not np.allclose(
        keras.ops.convert_to_numpy(layer(short))[0, 1],
        keras.ops.convert_to_numpy(layer(BAGS))[0, 1],
    )


@pytest.mark.tensorflow_only(reason="tf.RaggedTensor")
def test_ragged_input_equals_padded():
    import tensorflow as tf

    layer = MultiHotEmbedding([3, 5], 4, combiner="mean")
    ragged = tf.ragged.constant([[[1, 2], [4, 0, 3]], [[], [2]]])
    padded = layer(BAGS)
    test_case.assert_allclose(layer(ragged), padded)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"combiner": "max"}, "combiner"),
        ({"vocabulary_sizes": []}, "vocabulary_sizes"),
        ({"embedding_dim": 0}, "embedding_dim"),
    ],
)
def test_invalid_arguments(kwargs, message):
    arguments = {"vocabulary_sizes": [3], "embedding_dim": 4} | kwargs
    with pytest.raises(ValueError, match=message):
        MultiHotEmbedding(**arguments)


def test_wrong_input_shapes():
    with pytest.raises(ValueError, match="2 tables"):
        MultiHotEmbedding([3, 3], 2)(np.zeros((1, 3, 2), "int32"))
    with pytest.raises(ValueError, match=r"\[B, F, L\]"):
        MultiHotEmbedding([3, 3], 2)(np.zeros((1, 2), "int32"))


@pytest.mark.parametrize("combiner", ["sum", "attention"])
def test_config_and_saving(combiner, tmp_path):
    layer = MultiHotEmbedding(
        [3, 5], 4, combiner=combiner, embeddings_initializer="he_normal"
    )
    clone = test_case.assert_config_round_trip(layer)
    assert clone.combiner == combiner
    test_case.assert_serialization_round_trip(layer)
    inputs = keras.Input((2, 3), dtype="int32")
    model = keras.Model(inputs, MultiHotEmbedding([3, 5], 4, combiner)(inputs))
    test_case.assert_keras_save_load(model, BAGS, tmp_path)


def test_trains_in_a_functional_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2, 3), dtype="int32")
    tokens = MultiHotEmbedding([3, 5], 4, combiner="attention")(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(tokens))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    before = keras.ops.convert_to_numpy(model.layers[1].query).copy()
    model.fit(BAGS, np.array([[1.0], [-1.0]]), epochs=3, verbose=0)
    after = keras.ops.convert_to_numpy(model.layers[1].query)
    assert not np.allclose(before, after)  # the query learns


def test_mixed_precision_outputs_float16():
    layer = MultiHotEmbedding([3, 5], 4, "attention", dtype="mixed_float16")
    out = layer(BAGS)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))


def test_docstring_example_runs():
    import keras_adrec

    code = MultiHotEmbedding.__doc__.split("```python")[1].split("```")[0]
    namespace = {"keras_adrec": keras_adrec, "np": np}
    exec(textwrap.dedent(code), namespace)
    assert tuple(namespace["tokens"].shape) == (1, 2, 8)
