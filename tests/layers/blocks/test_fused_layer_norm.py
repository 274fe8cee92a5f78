"""`fused_layer_norm.layer_norm` against the Keras layer it stands for."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers import AdRecBlock
from keras_adrec.layers.blocks import fused_layer_norm
from keras_adrec.layers.blocks.fused_layer_norm import layer_norm
from tests.test_case import assert_allclose


def _layer(dim=16, dtype=None, seed=0):
    layer = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype)
    layer.build((None, dim))
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(size=dim).astype("float32") for _ in range(2)]
    )
    return layer


@pytest.mark.parametrize("shape", [(4, 16), (3, 5, 16)])
def test_values_equal_the_keras_layer(shape):
    layer = _layer()
    x = np.random.default_rng(1).normal(size=shape).astype("float32") * 3
    assert_allclose(layer_norm(layer, x), layer(x), atol=2e-6)


@pytest.mark.tensorflow_only(reason="tf.custom_gradient, tf.GradientTape")
@pytest.mark.parametrize("shape", [(4, 16), (3, 5, 16)])
def test_gradients_equal_autodiff_of_the_keras_layer(shape):
    # The closed-form backward pass against TensorFlow differentiating
    # keras.ops.layer_normalization, for the input, gamma and beta.
    assert fused_layer_norm.applies(_layer())
    layer = _layer()
    x = tf.constant(np.random.default_rng(2).normal(size=shape) * 3, "float32")
    upstream = tf.constant(
        np.random.default_rng(3).normal(size=shape), "float32"
    )
    gradients = []
    for function in (layer_norm, lambda lay, t: lay(t)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(function(layer, x) * upstream)
        gradients.append(tape.gradient(loss, [x] + layer.trainable_weights))
    for fast, plain in zip(*gradients):
        assert_allclose(fast, plain, atol=1e-5)


def test_half_precision_computes_in_float32_and_returns_the_policy_dtype():
    layer = _layer(dtype="mixed_bfloat16")
    x = np.random.default_rng(4).normal(size=(4, 16)).astype("float32")
    got = layer_norm(layer, keras.ops.cast(x, "bfloat16"))
    assert keras.backend.standardize_dtype(got.dtype) == "bfloat16"
    assert_allclose(
        keras.ops.cast(got, "float32"),
        keras.ops.cast(layer(keras.ops.cast(x, "bfloat16")), "float32"),
        atol=1e-2,
    )


def test_other_layer_norms_are_called_as_they_are():
    uncentred = keras.layers.LayerNormalization(center=False)
    uncentred.build((None, 8))
    assert not fused_layer_norm.applies(uncentred)
    x = np.random.default_rng(5).normal(size=(2, 8)).astype("float32")
    assert_allclose(layer_norm(uncentred, x), uncentred(x), atol=0.0)


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
@pytest.mark.parametrize("norm_first", [True, False])
def test_block_output_and_gradients_equal_the_keras_layer_norm(
    norm_first, monkeypatch
):
    # The whole block, before (Keras LayerNormalization called) and after.
    block = AdRecBlock(
        num_heads=2, ffn_dim=32, mask_rule="relative", norm_first=norm_first
    )
    block.build((None, 27, 16))
    x = tf.constant(
        np.random.default_rng(6).normal(size=(8, 27, 16)), "float32"
    )

    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = block(x, training=False)
            loss = tf.reduce_sum(y * y)
        return [y] + tape.gradient(loss, [x] + block.trainable_weights)

    fast = run()
    monkeypatch.setattr(AdRecBlock, "_norm", lambda self, layer, t: layer(t))
    plain = run()
    for a, b in zip(fast, plain):
        assert_allclose(a, b, atol=1e-4, rtol=1e-5)
