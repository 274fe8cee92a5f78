"""The threshold softmax's pieces against their plain definitions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers.attention.mask_rules import get_mask_rule
from keras_adrec.layers.attention.threshold_softmax import masked_weights
from keras_adrec.layers.attention.threshold_softmax import renormalise
from keras_adrec.layers.attention.threshold_softmax import softmax_over
from keras_adrec.layers.attention.threshold_softmax import threshold_softmax
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


def _probability_path(scores, thresholds, min_keys, valid):
    """The relative rule decided on the probabilities, in float64 numpy:
    p = softmax(s) over valid keys, keep = (p >= theta max p) or p among
    the `min_keys` largest, w = p keep / sum(p keep)."""
    scores = np.where(valid, np.float64(scores), -np.inf)
    with np.errstate(invalid="ignore"):  # rows of padding only: nan
        p = _numpy_softmax(scores, (3,))
    theta = np.asarray(thresholds, "float64")[None, :, None, None]
    kth = -np.sort(-p, axis=-1)[..., min_keys - 1 : min_keys]
    keep = ((p >= theta * p.max(-1, keepdims=True)) | (p >= kth)) & valid
    kept = np.where(keep, p, 0.0)
    total = kept.sum(-1, keepdims=True)
    weights = np.divide(kept, total, out=np.zeros_like(kept), where=total > 0)
    return p, keep, weights


def _relative_inputs(seed, with_padding):
    rng = np.random.default_rng(seed)
    scores = (rng.normal(size=(3, 2, 5, 7)) * 2.0).astype("float32")
    valid = np.ones(scores.shape, bool)
    if with_padding:
        valid = np.broadcast_to(rng.random((3, 1, 5, 7)) < 0.7, scores.shape)
        valid = valid.copy()
        valid[0, :, 1] = False  # a row whose keys are all padding
    return scores, valid


@pytest.mark.parametrize("with_padding", [False, True])
@pytest.mark.parametrize("thresholds", [[0.3, 0.05], [0.0, 0.6]])
def test_relative_weights_from_the_logits_equal_the_probability_path(
    with_padding, thresholds
):
    # `masked_weights` decides the relative rule on the logits
    # (s >= max s + log theta) and takes one softmax over the kept ones;
    # the paper's order is softmax, keep on p, renormalise.
    scores, valid = _relative_inputs(3, with_padding)
    p, keep, expected = _probability_path(scores, thresholds, 2, valid)
    # No probability sits at a cutoff, where float rounding may decide.
    theta = np.asarray(thresholds)[None, :, None, None]
    margin = np.abs(p - theta * p.max(-1, keepdims=True))
    assert np.min(np.where(valid, margin, np.inf)) > 1e-5
    rule = get_mask_rule("relative", (3,), min_keys=2)
    mask = keras.ops.convert_to_tensor(valid) if with_padding else None
    values = np.asarray(thresholds, "float32")[None, :, None, None]
    got = masked_weights(
        keras.ops.convert_to_tensor(scores), rule, lambda d: values, mask
    )
    assert_allclose(got, expected, atol=1e-6)
    _, full_weights, full_keep = threshold_softmax(
        keras.ops.convert_to_tensor(scores), rule, lambda d: values, mask
    )
    assert np.array_equal(keras.ops.convert_to_numpy(full_keep), keep)
    assert_allclose(full_weights, expected, atol=1e-6)
    if with_padding:
        assert np.all(keras.ops.convert_to_numpy(got)[0, :, 1] == 0.0)


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
@pytest.mark.parametrize("with_padding", [False, True])
def test_relative_weights_from_the_logits_have_the_renormalised_gradient(
    with_padding,
):
    # The gradient of the one-softmax path against TensorFlow
    # differentiating the paper's order, p keep / sum(p keep).
    scores, valid = _relative_inputs(4, with_padding)
    thresholds = [0.3, 0.05]
    _, keep, _ = _probability_path(scores, thresholds, 2, valid)
    rule = get_mask_rule("relative", (3,), min_keys=2)
    values = np.asarray(thresholds, "float32")[None, :, None, None]
    upstream = tf.constant(
        np.random.default_rng(5).normal(size=scores.shape), tf.float32
    )
    scores = tf.constant(scores)
    mask = tf.constant(valid) if with_padding else None
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(scores)
        fast = masked_weights(scores, rule, lambda d: values, mask)
        p = tf.nn.softmax(tf.where(valid, scores, -1e9), axis=-1)
        kept = tf.where(keep, p, 0.0)
        total = tf.maximum(tf.reduce_sum(kept, -1, keepdims=True), 1e-30)
        plain = kept / total
        fast_loss = tf.reduce_sum(fast * upstream)
        plain_loss = tf.reduce_sum(plain * upstream)
    assert_allclose(fast, plain, atol=1e-6)
    assert_allclose(
        tape.gradient(fast_loss, scores),
        tape.gradient(plain_loss, scores),
        atol=1e-6,
    )


@pytest.mark.parametrize("rule_name", ["paper", "straight_through"])
def test_rules_without_a_logit_form_take_the_probability_path(rule_name):
    rule = get_mask_rule(rule_name, (3,))
    assert rule.logit_keep(None, None, None) is None
    scores = keras.ops.convert_to_tensor(_relative_inputs(6, False)[0])
    values = np.asarray([0.3, 0.05], "float32")[None, :, None, None]
    assert_allclose(
        masked_weights(scores, rule, lambda d: values),
        threshold_softmax(scores, rule, lambda d: values)[1],
        atol=0.0,
    )
