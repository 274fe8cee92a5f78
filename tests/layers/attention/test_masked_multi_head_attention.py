"""Tests for `MaskedMultiHeadAttention` against a numpy eq. 1-4 reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers import MaskedMultiHeadAttention
from tests.layers.attention.references import assert_away_from_thresholds
from tests.layers.attention.references import built_layer
from tests.layers.attention.references import numpy_attention
from tests.layers.attention.references import random_tokens
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip
from tests.test_case import assert_keras_save_load


@pytest.mark.parametrize(
    "num_heads, thresholds",
    [
        (2, "geometric"),
        (2, [0.05, 0.2]),
        (3, [0.0, 0.1, 0.3]),
        (4, "geometric"),
    ],
)
@pytest.mark.parametrize("training", [False, True])
def test_matches_numpy_reference(num_heads, thresholds, training):
    layer = built_layer(num_heads=num_heads, mask_thresholds=thresholds)
    x = random_tokens((3, 6, 8), seed=num_heads)
    expected, p, a = numpy_attention(
        x, x, layer.get_weights(), layer.mask_thresholds
    )
    assert_away_from_thresholds(p, layer.mask_thresholds)
    output, scores = layer(
        x, x, return_attention_scores=True, training=training
    )
    assert_allclose(output, expected, atol=1e-4, rtol=1e-4)
    assert_allclose(scores, a, atol=1e-5)
    # The fused inference path (no scores requested) is masked too.
    assert_allclose(layer(x, x, training=training), expected, atol=1e-4)


def test_geometric_thresholds():
    layer = MaskedMultiHeadAttention(4, 2)
    assert layer.mask_thresholds == pytest.approx([1e-1, 1e-2, 1e-3, 1e-4])


def test_cross_attention_with_separate_key():
    layer = built_layer(mask_thresholds=[0.1, 0.2], seq=5)
    query = random_tokens((2, 3, 8), seed=1)
    value = random_tokens((2, 5, 8), seed=2)
    key = random_tokens((2, 5, 8), seed=3)
    expected, p, _ = numpy_attention(
        query, value, layer.get_weights(), [0.1, 0.2], key=key
    )
    assert_away_from_thresholds(p, [0.1, 0.2])
    assert_allclose(layer(query, value, key=key), expected, atol=1e-4)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_no_thresholds_equals_keras_mha(training, with_mask, dropout):
    x = random_tokens((3, 6, 8), seed=4)
    reference = keras.layers.MultiHeadAttention(2, 4, dropout=dropout, seed=7)
    reference(x, x)
    layer = MaskedMultiHeadAttention(
        2, 4, mask_thresholds=None, dropout=dropout, seed=7
    )
    layer(x, x)
    layer.set_weights(reference.get_weights())
    mask = None
    if with_mask:
        mask = np.random.default_rng(0).random((3, 6, 6)) > 0.3
        mask[..., 0] = True
    kwargs = dict(attention_mask=mask, training=training)
    if training and dropout:
        # Same seed, same draws: the Keras dropout path is reused as is.
        assert_allclose(layer(x, x, **kwargs), reference(x, x, **kwargs))
        return
    assert_allclose(layer(x, x, **kwargs), reference(x, x, **kwargs))
    out, scores = layer(x, x, return_attention_scores=True, **kwargs)
    ref_out, ref_scores = reference(
        x, x, return_attention_scores=True, **kwargs
    )
    assert_allclose(out, ref_out)
    assert_allclose(scores, ref_scores)


def test_weights_interchangeable_with_keras_mha():
    x = random_tokens((2, 6, 8), seed=5)
    reference = keras.layers.MultiHeadAttention(
        2, 4, kernel_initializer=keras.initializers.RandomNormal(0, 0.5)
    )
    reference(x, x)
    layer = MaskedMultiHeadAttention(
        2, 4, mask_thresholds=[0.1, 0.05], mask_rule="paper"
    )
    layer(x, x)
    assert [w.shape for w in layer.get_weights()] == [
        w.shape for w in reference.get_weights()
    ]
    assert [w.path.split("/", 1)[1] for w in layer.weights] == [
        w.path.split("/", 1)[1] for w in reference.weights
    ]
    layer.set_weights(reference.get_weights())
    expected, p, _ = numpy_attention(x, x, reference.get_weights(), [0.1, 0.05])
    assert_away_from_thresholds(p, [0.1, 0.05])
    assert_allclose(layer(x, x), expected, atol=1e-4)
    # And the other way round.
    reference.set_weights(layer.get_weights())
    unmasked, _, _ = numpy_attention(x, x, layer.get_weights(), None)
    assert_allclose(reference(x, x), unmasked, atol=1e-4)


def test_scores_are_kept_first_pass_probabilities():
    thresholds = [0.1, 0.02]
    layer = built_layer(mask_thresholds=thresholds)
    x = random_tokens((4, 6, 8), seed=6)
    _, p, _ = numpy_attention(x, x, layer.get_weights(), None)
    assert_away_from_thresholds(p, thresholds)
    _, scores = layer(x, x, return_attention_scores=True)
    scores = np.asarray(scores)
    theta = np.asarray(thresholds)[None, :, None, None]
    keep = (p > theta) | (p == p.max(-1, keepdims=True))
    assert keep.sum() < keep.size, "the mask must drop something here"
    assert np.all(scores[~keep] == 0.0)
    renormalised = p * keep / (p * keep).sum(-1, keepdims=True)
    assert_allclose(scores, renormalised, atol=1e-5)
    # Equal to a softmax over the kept logits only.
    _, _, a = numpy_attention(x, x, layer.get_weights(), thresholds)
    assert_allclose(scores, a, atol=1e-5)
    # Kept entries keep their ratios: a_ij / a_ik = p_ij / p_ik.
    ratio = scores / np.where(keep, p, 1.0)
    ratio = np.where(keep, ratio, np.nan)
    spread = np.nanmax(ratio, -1) - np.nanmin(ratio, -1)
    assert np.all(spread < 1e-4 * np.nanmax(ratio, -1))


def test_mask_is_per_sample_and_per_head():
    thresholds = [0.1, 0.01]
    layer = built_layer(mask_thresholds=thresholds)
    x = random_tokens((4, 6, 8), seed=7)
    output, scores = layer(x, x, return_attention_scores=True)
    keep = np.asarray(scores) > 0
    # The masks do differ between samples and heads, so mixing would show.
    assert not np.array_equal(keep[0], keep[1])
    assert not np.array_equal(keep[:, 0], keep[:, 1])
    other = x.copy()
    other[1:] = random_tokens((3, 6, 8), seed=8, scale=3.0)
    output_other, scores_other = layer(
        other, other, return_attention_scores=True
    )
    assert_allclose(output_other[0], output[0], atol=1e-6)
    assert_allclose(scores_other[0], scores[0], atol=1e-7)
    single = layer(x[:1], x[:1])
    assert_allclose(single[0], output[0], atol=1e-6)


def test_high_thresholds_keep_the_argmax():
    # Every threshold is at least 1 / S: rows could lose every key.
    layer = built_layer(mask_thresholds=[0.2, 0.9], seq=5)
    x = random_tokens((4, 5, 8), seed=9)
    output, scores = layer(x, x, return_attention_scores=True)
    scores = np.asarray(scores)
    _, p, _ = numpy_attention(x, x, layer.get_weights(), None)
    assert np.all(np.isfinite(output))
    assert_allclose(scores.sum(-1), np.ones(scores.shape[:-1]), atol=1e-6)
    argmax = p.argmax(-1)[..., None]
    assert np.all(np.take_along_axis(scores, argmax, -1) > 0)
    # Rows with no probability above 0.9 attend to their argmax only.
    only_argmax = p[:, 1].max(-1) <= 0.9
    assert only_argmax.any()
    one_hot = np.take_along_axis(scores[:, 1], argmax[:, 1], -1)[..., 0]
    assert_allclose(one_hot[only_argmax], 1.0)


def test_threshold_is_strict():
    # A probability exactly equal to its head's threshold is dropped; one
    # float below the threshold keeps it.
    x = random_tokens((1, 6, 8), seed=24)
    probe = built_layer(num_heads=1, key_dim=8, mask_thresholds=[0.0])
    p = np.asarray(probe.compute_attention_maps(x, x)["unmasked"])[0, 0, 0]
    second = int(np.argsort(p)[-2])
    value = float(p[second])
    for threshold, kept in [
        (value, False),
        (float(np.nextafter(np.float32(value), np.float32(0))), True),
    ]:
        layer = built_layer(num_heads=1, key_dim=8, mask_thresholds=[threshold])
        layer.set_weights(probe.get_weights())
        _, scores = layer(x, x, return_attention_scores=True)
        assert (np.asarray(scores)[0, 0, 0, second] > 0) == kept
        assert np.asarray(scores)[0, 0, 0, np.argmax(p)] > 0


def test_thresholds_accept_tuples_and_arrays():
    assert MaskedMultiHeadAttention(
        2, 4, mask_thresholds=(0.2, 0.1)
    ).mask_thresholds == [
        0.2,
        0.1,
    ]
    thresholds = np.array([0.3, 0.05], "float32")
    layer = MaskedMultiHeadAttention(2, 4, mask_thresholds=thresholds)
    assert all(isinstance(v, float) for v in layer.mask_thresholds)
    assert layer.mask_thresholds == pytest.approx([0.3, 0.05])


@pytest.mark.parametrize("attention_axes", [(2,), (1, 2)])
def test_attention_axes(attention_axes):
    # Attending over axis 2 of (B, X, T, dim) is attention on each of the
    # B * X sequences; over axes (1, 2) it is attention over X * T tokens.
    thresholds = [0.1, 0.02]
    x = random_tokens((2, 3, 4, 8), seed=25)
    layer = MaskedMultiHeadAttention(
        2,
        4,
        mask_thresholds=thresholds,
        attention_axes=attention_axes,
        mask_rule="paper",
    )
    output, scores = layer(x, x, return_attention_scores=True)
    tokens = (
        x.reshape(6, 4, 8) if attention_axes == (2,) else x.reshape(2, 12, 8)
    )
    expected, p, a = numpy_attention(
        tokens, tokens, layer.get_weights(), thresholds
    )
    assert_away_from_thresholds(p, thresholds)
    assert_allclose(output, expected.reshape(x.shape), atol=1e-4)
    assert_allclose(np.sum(scores), np.sum(a), atol=1e-3)
    assert np.sum(np.asarray(scores) == 0) == np.sum(a == 0)


def test_zero_thresholds_keep_every_key():
    layer = built_layer(mask_thresholds=[0.0, 0.0])
    x = random_tokens((2, 6, 8), seed=10)
    unmasked, _, _ = numpy_attention(x, x, layer.get_weights(), None)
    assert_allclose(layer(x, x), unmasked, atol=1e-4)


def test_padding_mask_combines_with_threshold_mask():
    thresholds = [0.1, 0.02]
    layer = built_layer(mask_thresholds=thresholds)
    x = random_tokens((3, 6, 8), seed=11)
    mask = np.random.default_rng(1).random((3, 6, 6)) > 0.4
    mask[:, :, 2] = True
    expected, p, a = numpy_attention(
        x, x, layer.get_weights(), thresholds, attention_mask=mask
    )
    valid_p = np.where(mask[:, None], p, 0.5)
    assert_away_from_thresholds(valid_p, thresholds)
    output, scores = layer(
        x, x, attention_mask=mask, return_attention_scores=True
    )
    assert np.all(
        np.asarray(scores)[~np.broadcast_to(mask[:, None], a.shape)] == 0
    )
    assert_allclose(scores, a, atol=1e-5)
    assert_allclose(output, expected, atol=1e-4)
    assert_allclose(layer(x, x, attention_mask=mask), expected, atol=1e-4)


def test_fully_padded_row_gives_zero_weights():
    layer = built_layer(mask_thresholds=[0.1, 0.01])
    x = random_tokens((2, 6, 8), seed=12)
    mask = np.ones((2, 6, 6), bool)
    mask[0, 3] = False
    output, scores = layer(
        x, x, attention_mask=mask, return_attention_scores=True
    )
    assert np.all(np.isfinite(output))
    assert_allclose(np.asarray(scores)[0, :, 3], 0.0)


def test_causal_mask():
    thresholds = [0.1, 0.02]
    layer = built_layer(mask_thresholds=thresholds)
    x = random_tokens((2, 6, 8), seed=13)
    causal = np.tril(np.ones((6, 6), bool))[None].repeat(2, 0)
    expected, p, _ = numpy_attention(
        x, x, layer.get_weights(), thresholds, attention_mask=causal
    )
    assert_away_from_thresholds(np.where(causal[:, None], p, 0.5), thresholds)
    assert_allclose(layer(x, x, use_causal_mask=True), expected, atol=1e-4)


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
def test_gradients_reach_query_key_and_value_kernels():
    layer = built_layer(mask_thresholds=[0.1, 0.01])
    x = tf.constant(random_tokens((4, 6, 8), seed=14))
    probe = tf.constant(random_tokens((4, 6, 8), seed=15))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, x, training=True) * probe)
    grads = tape.gradient(loss, layer.trainable_variables)
    by_name = {v.path.split("/", 1)[1]: g for v, g in zip(layer.weights, grads)}
    for name in ("query/kernel", "key/kernel", "value/kernel"):
        assert np.all(np.isfinite(by_name[name]))
        assert np.linalg.norm(by_name[name]) > 1e-3, name


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
def test_gradient_matches_finite_differences():
    # float64: the keep pattern is piecewise constant in the weights, so
    # finite differences see the gradient of the renormalised softmax.
    thresholds = [0.1, 0.03]
    layer = built_layer(mask_thresholds=thresholds, dtype="float64")
    x = np.float64(random_tokens((2, 5, 8), seed=16))
    probe = np.float64(random_tokens((2, 5, 8), seed=17))
    _, p, _ = numpy_attention(x, x, layer.get_weights(), None)
    assert_away_from_thresholds(p, thresholds, margin=1e-4)
    kernel = layer.query_dense.kernel
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, x) * probe)
    grad = np.asarray(tape.gradient(loss, kernel))
    weights = layer.get_weights()
    eps = 1e-6
    for index in [(0, 0, 0), (3, 1, 2), (7, 0, 3), (5, 1, 1)]:
        plus = [w.copy() for w in weights]
        minus = [w.copy() for w in weights]
        plus[0][index] += eps
        minus[0][index] -= eps
        f_plus = np.sum(numpy_attention(x, x, plus, thresholds)[0] * probe)
        f_minus = np.sum(numpy_attention(x, x, minus, thresholds)[0] * probe)
        numeric = (f_plus - f_minus) / (2 * eps)
        np.testing.assert_allclose(grad[index], numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
def test_mixed_float16_large_inputs_stay_finite(mixed_float16):
    layer = MaskedMultiHeadAttention(2, 4)
    x = tf.constant(random_tokens((4, 6, 8), seed=18, scale=1e3))
    with tf.GradientTape() as tape:
        output, scores = layer(
            x, x, return_attention_scores=True, training=True
        )
        loss = tf.reduce_sum(tf.cast(output, "float32"))
    assert output.dtype == "float16"
    grads = tape.gradient(loss, layer.trainable_variables)
    assert np.all(np.isfinite(output))
    assert np.all(np.isfinite(scores))
    assert_allclose(
        tf.reduce_sum(tf.cast(scores, "float32"), -1), np.ones((4, 2, 6)), 1e-3
    )
    for grad in grads:
        assert np.all(np.isfinite(grad))


def test_mask_applied_at_inference_in_a_model():
    thresholds = [0.1, 0.02]
    layer = MaskedMultiHeadAttention(
        2,
        4,
        mask_thresholds=thresholds,
        mask_rule="paper",
        kernel_initializer=keras.initializers.RandomNormal(0, 0.5),
    )
    inputs = keras.Input((6, 8))
    model = keras.Model(inputs, layer(inputs, inputs))
    x = random_tokens((5, 6, 8), seed=19)
    expected, p, _ = numpy_attention(x, x, layer.get_weights(), thresholds)
    assert_away_from_thresholds(p, thresholds)
    unmasked, _, _ = numpy_attention(x, x, layer.get_weights(), None)
    assert np.abs(unmasked - expected).max() > 1e-2
    assert_allclose(model.predict(x, verbose=0), expected, atol=1e-4)
    assert_allclose(model(x, training=False), expected, atol=1e-4)


@pytest.mark.tensorflow_only(
    reason="tf.function(jit_compile=True): XLA on TensorFlow"
)
def test_xla_matches_eager():
    layer = built_layer(mask_thresholds=[0.1, 0.01])
    x = tf.constant(random_tokens((3, 6, 8), seed=20))
    compiled = tf.function(
        lambda t: layer(t, t, return_attention_scores=True), jit_compile=True
    )
    for actual, expected in zip(
        compiled(x), layer(x, x, return_attention_scores=True)
    ):
        assert_allclose(actual, expected, atol=1e-5)


def test_attention_dropout_applies_to_masked_weights():
    layer = built_layer(mask_thresholds=[0.1, 0.01], dropout=0.5, seed=3)
    x = random_tokens((3, 6, 8), seed=21)
    inference = layer(x, x, training=False)
    expected, _, _ = numpy_attention(x, x, layer.get_weights(), [0.1, 0.01])
    assert_allclose(inference, expected, atol=1e-4)
    first = layer(x, x, training=True)
    second = layer(x, x, training=True)
    assert np.abs(np.asarray(first) - inference).max() > 1e-3
    assert np.abs(np.asarray(first) - np.asarray(second)).max() > 1e-3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_heads=0, key_dim=4), "num_heads"),
        (dict(num_heads=2.0, key_dim=4), "num_heads"),
        (dict(num_heads=2, key_dim=4, mask_thresholds=[0.1]), "one threshold"),
        (dict(num_heads=2, key_dim=4, mask_thresholds=[0.1, 1.0]), r"\[0, 1\)"),
        (
            dict(num_heads=2, key_dim=4, mask_thresholds=[0.1, -0.1]),
            r"\[0, 1\)",
        ),
        (dict(num_heads=2, key_dim=4, mask_thresholds="linear"), "geometric"),
        (dict(num_heads=2, key_dim=4, mask_thresholds=["a", "b"]), "geometric"),
        (
            dict(num_heads=2, key_dim=4, mask_thresholds=[[0.1, 0.2]]),
            "geometric",
        ),
        (dict(num_heads=2, key_dim=4, mask_thresholds=0.1), "geometric"),
        (dict(num_heads=2, key_dim=4, dropout=1.0), "dropout"),
        (dict(num_heads=2, key_dim=4, flash_attention=True), "flash_attention"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskedMultiHeadAttention(**kwargs)


@pytest.mark.parametrize("thresholds", ["geometric", [0.3, 0.0], None])
def test_config_round_trip(thresholds):
    layer = MaskedMultiHeadAttention(2, 4, mask_thresholds=thresholds)
    clone = assert_config_round_trip(layer)
    assert clone.mask_thresholds == layer.mask_thresholds
    assert layer.get_config()["mask_thresholds"] == layer.mask_thresholds


def test_keras_save_load(tmp_path):
    inputs = keras.Input((6, 8))
    layer = MaskedMultiHeadAttention(2, 4, mask_thresholds=[0.2, 0.05])
    model = keras.Model(inputs, layer(inputs, inputs))
    x = random_tokens((3, 6, 8), seed=23)
    reloaded = assert_keras_save_load(model, x, tmp_path)
    assert reloaded.layers[-1].mask_thresholds == [0.2, 0.05]
    assert isinstance(reloaded.layers[-1], MaskedMultiHeadAttention)
