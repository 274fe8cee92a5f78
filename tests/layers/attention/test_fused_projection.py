"""The fused self-attention path against the general one."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers import MaskedMultiHeadAttention
from tests.layers.attention.references import built_layer
from tests.layers.attention.references import numpy_attention
from tests.layers.attention.references import random_tokens
from tests.test_case import assert_allclose


@pytest.mark.parametrize("rule", ["paper", "relative", "straight_through"])
@pytest.mark.parametrize("training", [False, True])
def test_fused_self_attention_matches_separate_projections(rule, training):
    # One tensor as query, key and value takes the fused QKV matmul; a copy
    # of it as value takes one projection each. Same numbers.
    thresholds = [0.1, 0.02]
    layer = built_layer(mask_thresholds=thresholds, mask_rule=rule)
    # A backend tensor: `__call__` keeps it the same object (a tf.Tensor
    # on JAX would be converted once per argument).
    x = keras.ops.convert_to_tensor(random_tokens((3, 6, 8), seed=41))
    calls = []
    fused_scores = layer._fused_scores

    def spy(query, value, key):
        calls.append(query is value and key is value)
        return fused_scores(query, value, key)

    layer._fused_scores = spy
    fused, fused_a = layer(x, x, return_attention_scores=True)
    separate, separate_a = layer(
        x, keras.ops.copy(x), return_attention_scores=True
    )
    assert calls == [True, False]
    assert_allclose(fused, separate, atol=1e-6)
    assert_allclose(fused_a, separate_a, atol=1e-6)
    if rule != "relative":
        expected, _, a = numpy_attention(
            np.asarray(x), np.asarray(x), layer.get_weights(), thresholds
        )
        assert_allclose(fused_a, a, atol=1e-5)
        assert_allclose(fused, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
def test_fused_path_gradient_matches_the_masked_path():
    # The fused path (no attention mask) and the general path (an
    # all-True attention mask) give the same kernel gradients.
    thresholds = [0.1, 0.02]
    layer = built_layer(mask_thresholds=thresholds)
    x = tf.constant(random_tokens((3, 6, 8), seed=42))
    r = tf.constant(random_tokens((3, 6, 8), seed=43))
    everything = tf.ones((3, 6, 6), bool)
    gradients = []
    for mask in (None, everything):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, x, attention_mask=mask) * r)
        gradients.append(tape.gradient(loss, layer.trainable_variables))
    for variable, fused, general in zip(layer.trainable_variables, *gradients):
        if "kernel" in variable.path:  # the key bias gets exactly zero
            assert np.abs(np.asarray(general)).max() > 1e-3
        assert_allclose(fused, general, atol=1e-5, rtol=1e-5)


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
def test_fused_path_with_a_different_value_size():
    # value_dim != key_dim: the fused QKV matmul splits its columns.
    layer = MaskedMultiHeadAttention(
        num_heads=2, key_dim=4, value_dim=3, mask_thresholds=[0.1, 0.02]
    )
    x = tf.constant(random_tokens((3, 6, 8), seed=44))
    r = tf.constant(random_tokens((3, 6, 8), seed=45))
    layer(x, x)
    results = []
    for fused in (True, False):  # one QKV matmul, then one per input
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = x if fused else tf.identity(x)
            loss = tf.reduce_sum(layer(x, value) * r)
        results.append((loss, tape.gradient(loss, [x] + layer.weights)))
    (fused_loss, fused), (loss, separate) = results
    assert_allclose(fused_loss, loss, atol=1e-5)
    for a, b in zip(fused, separate):
        assert_allclose(a, b, atol=1e-5, rtol=1e-5)
