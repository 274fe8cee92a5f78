"""The threshold softmax's pieces against their plain definitions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers.attention.threshold_softmax import renormalise
from keras_adrec.layers.attention.threshold_softmax import softmax_over
from tests.test_case import assert_allclose


@pytest.mark.tensorflow_only(reason="tf.custom_gradient, tf.GradientTape")
@pytest.mark.parametrize("with_padding", [False, True])
def test_renormalised_weights_gradient_is_autodiff_of_the_formula(
    with_padding,
):
    # The closed-form backward (softmax over the kept keys) against
    # TensorFlow differentiating p keep / sum(p keep) with p = softmax(s).
    rng = np.random.default_rng(0)
    scores = tf.constant(rng.normal(size=(2, 2, 5, 7)) * 3.0)
    keep = tf.constant(rng.random((2, 2, 5, 7)) < 0.5)
    keep = tf.logical_or(keep, tf.one_hot(2, 7, on_value=True, off_value=False))
    if with_padding:
        # A row that keeps nothing: weights 0 under the floor.
        keep = tf.tensor_scatter_nd_update(
            keep, [[0, 1, 3]], tf.zeros((1, 7), tf.bool)
        )
    upstream = tf.constant(rng.normal(size=(2, 2, 5, 7)))
    floor = 1e-30 if with_padding else None
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(scores)
        p = tf.nn.softmax(scores, axis=-1)
        fast = renormalise(scores, p, keep, (3,), floor)
        kept = tf.where(keep, p, 0.0)
        total = tf.reduce_sum(kept, axis=-1, keepdims=True)
        if floor is not None:
            total = tf.maximum(total, floor)
        plain = kept / total
        fast_loss = tf.reduce_sum(fast * upstream)
        plain_loss = tf.reduce_sum(plain * upstream)
    assert_allclose(fast, plain, atol=1e-15)
    assert_allclose(
        tape.gradient(fast_loss, scores),
        tape.gradient(plain_loss, scores),
        atol=1e-12,
    )
    if with_padding:
        assert np.all(np.asarray(fast)[0, 1, 3] == 0.0)


def _numpy_softmax(x, axes):
    e = np.exp(x - x.max(axis=axes, keepdims=True))
    return e / e.sum(axis=axes, keepdims=True)


@pytest.mark.parametrize(
    "shape, key_axes",
    [
        ((2, 3, 2, 4, 5), (4,)),
        ((2, 3, 2, 4, 5, 6), (5,)),
        ((2, 3, 2, 4, 5, 4, 5), (5, 6)),
        ((2, 2, 3, 4, 3, 4), (4, 5)),
    ],
)
def test_softmax_over_trailing_axes_at_any_rank(shape, key_axes):
    scores = np.random.default_rng(1).normal(size=shape).astype("float32")
    got = softmax_over(keras.ops.convert_to_tensor(scores), key_axes)
    assert tuple(got.shape) == shape
    assert_allclose(got, _numpy_softmax(scores, key_axes), atol=1e-6)


@pytest.mark.parametrize("with_padding", [False, True])
def test_renormalised_weights_are_the_kept_probabilities_rescaled(
    with_padding,
):
    # Every backend: w = p keep / sum(p keep), rows keeping nothing 0.
    rng = np.random.default_rng(2)
    scores = (rng.normal(size=(2, 2, 5, 7)) * 3.0).astype("float32")
    keep = rng.random((2, 2, 5, 7)) < 0.5
    keep[..., 2] = True
    if with_padding:
        keep[0, 1, 3] = False
    p = _numpy_softmax(scores, (3,))
    got = renormalise(
        keras.ops.convert_to_tensor(scores),
        keras.ops.convert_to_tensor(p),
        keras.ops.convert_to_tensor(keep),
        (3,),
        1e-30 if with_padding else None,
    )
    kept = np.where(keep, p, 0.0)
    total = np.maximum(kept.sum(-1, keepdims=True), 1e-30)
    assert_allclose(got, kept / total, atol=1e-6)
    if with_padding:
        assert np.all(np.asarray(got)[0, 1, 3] == 0.0)
