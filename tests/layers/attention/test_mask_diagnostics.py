"""Per-head diagnostics of the attention layer against numpy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layers.attention.references import built_layer
from tests.layers.attention.references import numpy_attention
from tests.layers.attention.references import numpy_rule_attention
from tests.layers.attention.references import random_tokens
from tests.test_case import assert_allclose


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
def test_single_key_rows_send_no_query_key_gradient():
    """The mechanism of issue 13 under the paper rule.

    Theta 0.5 on head 0: at most one p exceeds it and the argmax is kept,
    so every query row keeps exactly one key and its weight is
    `p_j / p_j = 1` whatever the scores: head 0's query and key kernels
    get no gradient (up to float rounding), while head 1 (theta 0) and the
    value kernel of head 0 do. The straight-through rule, with the same
    forward pass, gives head 0 a gradient.
    """
    thresholds = [0.5, 0.0]
    x = tf.constant(random_tokens((4, 6, 8), seed=38))
    target = tf.constant(random_tokens((4, 6, 8), seed=39))
    norms = {}
    for rule in ("paper", "straight_through"):
        keras.utils.set_random_seed(7)
        layer = built_layer(mask_thresholds=thresholds, mask_rule=rule)
        diagnostics = layer.mask_diagnostics(x)
        assert diagnostics["single_key_fraction"][0] == 1.0
        assert diagnostics["mean_kept_keys"][0] == 1.0
        assert diagnostics["mean_kept_keys"][1] == 6.0
        variables = layer.trainable_variables
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, x) * target)
        gradients = dict(
            zip([v.path for v in variables], tape.gradient(loss, variables))
        )
        norms[rule] = layer.head_gradient_norms(gradients)
        value_grad = np.asarray(gradients[layer.value_dense.kernel.path])
        assert np.abs(value_grad[:, 0, :]).max() > 1e-2
    for name in ("query_kernel", "key_kernel"):
        paper, straight = norms["paper"][name], norms["straight_through"][name]
        assert paper[1] > 1e-2 and straight[0] > 1e-2
        assert paper[0] <= 1e-6 * straight[0]


def test_mask_diagnostics_match_numpy():
    thresholds = [0.3, 0.05]
    for rule in ("paper", "relative"):
        layer = built_layer(mask_thresholds=thresholds, mask_rule=rule)
        x = random_tokens((3, 6, 8), seed=40, scale=2.0)
        _, _, _, keep = numpy_rule_attention(
            x, x, layer.get_weights(), thresholds, rule
        )
        counts = keep.sum(-1)  # (B, H, T)
        report = layer.mask_diagnostics(x)
        assert_allclose(report["mean_kept_keys"], counts.mean(axis=(0, 2)))
        assert_allclose(
            report["single_key_fraction"], (counts == 1).mean(axis=(0, 2))
        )
        assert_allclose(report["thresholds"], thresholds)
    plain = built_layer(mask_thresholds=None)
    report = plain.mask_diagnostics(x)
    assert_allclose(report["mean_kept_keys"], [6.0, 6.0])
    assert_allclose(report["single_key_fraction"], [0.0, 0.0])


def test_head_gradient_norms_slice_heads():
    layer = built_layer()
    gq = np.random.default_rng(0).normal(size=(8, 2, 4))
    report = layer.head_gradient_norms(
        {layer.query_dense.kernel.path: gq, layer.key_dense.kernel.path: None}
    )
    assert_allclose(report["query_kernel"], np.sqrt((gq**2).sum(axis=(0, 2))))
    assert_allclose(report["key_kernel"], [0.0, 0.0])


def test_compute_attention_maps():
    thresholds = [0.1, 0.02]
    layer = built_layer(mask_thresholds=thresholds)
    x = random_tokens((2, 6, 8), seed=22)
    _, p, a = numpy_attention(x, x, layer.get_weights(), thresholds)
    maps = layer.compute_attention_maps(x, x)
    assert_allclose(maps["unmasked"], p, atol=1e-5)
    assert_allclose(maps["masked"], a, atol=1e-5)
    plain = built_layer(mask_thresholds=None)
    maps = plain.compute_attention_maps(x, x)
    assert_allclose(maps["masked"], maps["unmasked"])
