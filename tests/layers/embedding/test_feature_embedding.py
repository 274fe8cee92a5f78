import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers import FeatureEmbedding
from tests import test_case
from tests.test_case import assert_allclose


def test_lookup_matches_separate_tables():
    layer = FeatureEmbedding([3, 5, 2], 4)
    ids = np.array([[0, 4, 1], [2, 0, 0]])
    out = keras.ops.convert_to_numpy(layer(ids))
    table = keras.ops.convert_to_numpy(layer.embeddings)
    # Reference: slice the variable into one table per feature.
    tables = [table[0:3], table[3:8], table[8:10]]
    expected = np.stack(
        [np.stack([tables[f][ids[b, f]] for f in range(3)]) for b in range(2)]
    )
    assert out.shape == (2, 3, 4)
    test_case.assert_allclose(out, expected)


def test_dlrm_uniform_bounds_per_table():
    keras.utils.set_random_seed(0)
    layer = FeatureEmbedding([4, 10000], 8)
    layer.build((None, 2))
    table = keras.ops.convert_to_numpy(layer.embeddings)
    assert np.abs(table[:4]).max() <= np.sqrt(1 / 4)
    assert np.abs(table[4:]).max() <= np.sqrt(1 / 10000)
    # The big table spans its range: not a constant or tiny init.
    assert np.abs(table[4:]).max() > 0.9 * np.sqrt(1 / 10000)


def test_out_of_range_id_raises_or_gives_nan():
    # Past the last row of the joint table: TensorFlow's gather raises;
    # JAX cannot raise on a value inside compiled code, and its `take`
    # fills the row with NaN instead (which a NaN loss guard then sees).
    layer = FeatureEmbedding([3, 3], 2)
    ids = np.array([[0, 7], [1, 2]])
    if keras.backend.backend() == "tensorflow":
        with pytest.raises(Exception):
            keras.ops.convert_to_numpy(layer(ids))
        return
    out = keras.ops.convert_to_numpy(layer(ids))
    assert np.all(np.isnan(out[0, 1]))
    assert np.all(np.isfinite(out[0, 0])) and np.all(np.isfinite(out[1]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocabulary_sizes": [], "embedding_dim": 4}, "vocabulary_sizes"),
        ({"vocabulary_sizes": [3, 0], "embedding_dim": 4}, "positive"),
        ({"vocabulary_sizes": [3], "embedding_dim": 0}, "embedding_dim"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureEmbedding(**kwargs)


def test_wrong_feature_count():
    with pytest.raises(ValueError, match="2 tables"):
        FeatureEmbedding([3, 3], 2)(np.zeros((1, 3), "int32"))


def test_config_and_saving(tmp_path):
    layer = FeatureEmbedding([3, 5], 4, embeddings_initializer="he_normal")
    test_case.assert_config_round_trip(layer)
    test_case.assert_serialization_round_trip(FeatureEmbedding([3, 5], 4))
    inputs = keras.Input((2,), dtype="int32")
    model = keras.Model(inputs, FeatureEmbedding([3, 5], 4)(inputs))
    test_case.assert_keras_save_load(
        model, np.array([[1, 4], [2, 0]], "int32"), tmp_path
    )


@pytest.mark.tensorflow_only(reason="tf.function graph inspection")
def test_lookup_reads_rows_not_the_whole_table():
    # Issue 15: `keras.ops.take` on the variable read (and, once a sparse
    # update had run, copied) the whole table every step. The lookup is a
    # gather from the variable itself, and mixed precision casts rows only.
    layer = FeatureEmbedding([50, 30], embedding_dim=4)
    layer.build((None, 2))
    ids = tf.constant([[1, 2], [3, 0]])
    graph = tf.function(layer).get_concrete_function(ids).graph
    op_types = {op.type for op in graph.get_operations()}
    assert "ResourceGather" in op_types
    assert "ReadVariableOp" not in op_types
    expected = np.take(layer.embeddings.numpy(), np.asarray(ids) + [0, 50], 0)
    assert_allclose(layer(ids), expected, atol=0)
    # Any rank of ids; the static shape survives the flat gather.
    batch = tf.function(layer).get_concrete_function(
        tf.TensorSpec((None, 2), tf.int32)
    )
    assert batch.output_shapes.as_list() == [None, 2, 4]
    half = FeatureEmbedding([50, 30], embedding_dim=4, dtype="mixed_float16")
    half.build((None, 2))
    assert half.embeddings.dtype == "float32"
    assert keras.backend.standardize_dtype(half(ids).dtype) == "float16"
