"""The dropout mask generators: rate, independence, modes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers.attention.stateless_dropout import dropout_keep_mask_tf
from keras_adrec.layers.attention.stateless_dropout import stateless_dropout
from tests.test_case import assert_allclose


def test_stateless_dropout_is_inverted_dropout():
    x = np.ones((200, 500), "float32")
    generator = keras.random.SeedGenerator(3)
    first = np.asarray(stateless_dropout(x, 0.1, generator))
    second = np.asarray(stateless_dropout(x, 0.1, generator))
    assert set(np.unique(first)) <= {0.0, np.float32(1 / 0.9)}
    assert abs((first == 0).mean() - 0.1) < 0.005
    assert abs(first.mean() - 1.0) < 0.01
    assert not np.array_equal(first, second)
    again = stateless_dropout(x, 0.1, keras.random.SeedGenerator(3))
    assert_allclose(again, first)
    assert stateless_dropout(x, 0.0, generator) is x


@pytest.mark.tensorflow_only(reason="TensorFlow dropout generators")
@pytest.mark.parametrize("use_hash", [False, True])
def test_dropout_keep_masks_are_independent(use_hash):
    # Both generators' keep decisions (the counter hash that
    # `stateless_dropout` uses, and Philox): the rate within 5 binomial
    # standard errors, no correlation between neighbouring entries or
    # between two seeds.
    shape = (256, 27, 16)
    n = int(np.prod(shape))

    def dropped(rate, seed):
        keep = dropout_keep_mask_tf(
            shape, rate, tf.constant(seed, tf.int32), use_hash=use_hash
        )
        return ~np.asarray(keep)

    rate = 0.3
    first, second = dropped(rate, [3, 4]), dropped(rate, [3, 5])
    assert abs(first.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    flat = first.ravel().astype("float64")
    for lag in (1, 16, 27 * 16):
        corr = np.corrcoef(flat[:-lag], flat[lag:])[0, 1]
        assert abs(corr) < 5 / np.sqrt(n), (lag, corr)
    corr = np.corrcoef(flat, second.ravel().astype("float64"))[0, 1]
    assert abs(corr) < 5 / np.sqrt(n)
    # Small rates too: dropout 0.01 as in the presets.
    rare = dropped(0.01, [7, 8])
    assert abs(rare.mean() - 0.01) < 5 * np.sqrt(0.01 * 0.99 / n)


@pytest.mark.tensorflow_only(reason="TensorFlow dropout generators")
def test_stateless_dropout_uses_the_hash_in_every_mode():
    # Eagerly, in a graph and under XLA the mask is the counter hash's, so
    # one seed gives one mask whatever the mode (Philox gives another).
    x = np.ones((64, 27, 16), "float32")
    seed = keras.random.SeedGenerator(5).next()
    expected = {
        use_hash: np.where(
            np.asarray(dropout_keep_mask_tf(x.shape, 0.3, seed, use_hash)),
            np.float32(1 / 0.7),
            0.0,
        )
        for use_hash in (False, True)
    }
    assert not np.array_equal(expected[False], expected[True])
    for jit in (False, True):
        generator = keras.random.SeedGenerator(5)

        @tf.function(jit_compile=jit)
        def drop(inputs):
            return stateless_dropout(inputs, 0.3, generator)

        assert_allclose(drop(tf.constant(x)), expected[True], atol=0)
    eager = stateless_dropout(x, 0.3, keras.random.SeedGenerator(5))
    assert_allclose(eager, expected[True], atol=0)
