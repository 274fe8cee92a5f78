"""Tests for `MaskedMultiHeadAttention` against a numpy eq. 1-4 reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers import MaskedMultiHeadAttention
from keras_adrec.layers.attention.mask_rules import kth_largest
from keras_adrec.layers.attention.mask_rules import top_k_kth
from keras_adrec.layers.attention.stateless_dropout import dropout_keep_mask_tf
from keras_adrec.layers.attention.stateless_dropout import stateless_dropout
from keras_adrec.layers.attention.threshold_softmax import renormalise
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip
from tests.test_case import assert_keras_save_load


def numpy_attention(
    query, value, weights, thresholds, attention_mask=None, key=None
):
    """Masked multi-head attention (paper eq. 1-4) in float64 numpy.

    `weights` are a Keras MHA's `get_weights()`: query, key, value and
    output kernels with their biases. Returns `(output, p, a)`: the layer
    output, the first-pass probabilities and the masked weights, the last
    two of shape (B, H, T, S). `thresholds=None` is plain attention.
    """
    wq, bq, wk, bk, wv, bv, wo, bo = [np.float64(w) for w in weights]
    query = np.float64(query)
    value = np.float64(value)
    key = value if key is None else np.float64(key)
    key_dim = wq.shape[-1]
    q = np.einsum("btd,dhk->bthk", query, wq) + bq
    k = np.einsum("bsd,dhk->bshk", key, wk) + bk
    v = np.einsum("bsd,dhk->bshk", value, wv) + bv
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(key_dim)
    valid = np.ones(scores.shape, bool)
    if attention_mask is not None:
        valid = np.broadcast_to(
            np.asarray(attention_mask, bool)[:, None], scores.shape
        )
    scores = np.where(valid, scores, -np.inf)
    exp = np.exp(scores - scores.max(-1, keepdims=True))
    p = exp / exp.sum(-1, keepdims=True)
    if thresholds is None:
        a = p
    else:
        theta = np.asarray(thresholds, np.float64)[None, :, None, None]
        keep = (p > theta) | (p == p.max(-1, keepdims=True))
        keep &= valid
        a = p * keep / (p * keep).sum(-1, keepdims=True)
    heads = np.einsum("bhts,bshk->bthk", a, v)
    output = np.einsum("bthk,hkd->btd", heads, wo) + bo
    return output, p, a


def assert_away_from_thresholds(p, thresholds, margin=1e-6):
    """Float32 and float64 keep decisions agree when no p is near a theta.

    A zero threshold is skipped: float32 may round a tiny p to 0 and drop
    it, which changes the weights by less than float32 resolution.
    """
    theta = np.asarray(thresholds)[None, :, None, None]
    distance = np.where(theta > 0, np.abs(p - theta), np.inf)
    assert np.min(distance) > margin, "pick another seed"


def random_tokens(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32") * (
        scale
    )


def built_layer(num_heads=2, key_dim=4, dim=8, seq=6, **kwargs):
    kwargs.setdefault(
        "kernel_initializer", keras.initializers.RandomNormal(0, 0.5)
    )
    kwargs.setdefault(
        "bias_initializer", keras.initializers.RandomNormal(0, 0.5)
    )
    # The tests written against `numpy_attention` test the paper's rule.
    kwargs.setdefault("mask_rule", "paper")
    layer = MaskedMultiHeadAttention(num_heads, key_dim, **kwargs)
    layer.build((None, seq, dim), (None, seq, dim))
    return layer


@pytest.fixture(autouse=True)
def seeded():
    # Unseeded initializers and dropout become reproducible.
    keras.utils.set_random_seed(1234)


@pytest.fixture
def mixed_float16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


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


# ----------------------------------------------------------------------
# Mask rules, warm-up and diagnostics (issue 13)


def numpy_rule_attention(
    query, value, weights, thresholds, rule, min_keys=2, attention_mask=None
):
    """The layer's forward pass for `rule`, in float64 numpy.

    paper: keep = (p > theta) | (p == max p).
    straight_through: the paper's keep (its forward pass is the paper's).
    relative: keep = (p >= theta * max p) | (p >= k-th largest p),
    k = min_keys. Weights: a = p keep / sum(p keep).
    Returns `(output, p, a, keep)`.
    """
    wq, bq, wk, bk, wv, bv, wo, bo = [np.float64(w) for w in weights]
    query = np.float64(query)
    value = np.float64(value)
    key_dim = wq.shape[-1]
    q = np.einsum("btd,dhk->bthk", query, wq) + bq
    k = np.einsum("bsd,dhk->bshk", value, wk) + bk
    v = np.einsum("bsd,dhk->bshk", value, wv) + bv
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(key_dim)
    valid = np.ones(scores.shape, bool)
    if attention_mask is not None:
        valid = np.broadcast_to(
            np.asarray(attention_mask, bool)[:, None], scores.shape
        )
    scores = np.where(valid, scores, -np.inf)
    exp = np.exp(scores - scores.max(-1, keepdims=True))
    p = exp / exp.sum(-1, keepdims=True)
    theta = np.asarray(thresholds, np.float64)[None, :, None, None]
    row_max = p.max(-1, keepdims=True)
    if rule == "relative":
        kth = -np.sort(-p, axis=-1)[..., min(min_keys, p.shape[-1]) - 1]
        keep = (p >= theta * row_max) | (p >= kth[..., None])
    else:
        keep = (p > theta) | (p == row_max)
    keep &= valid
    a = p * keep / (p * keep).sum(-1, keepdims=True)
    heads = np.einsum("bhts,bshk->bthk", a, v)
    output = np.einsum("bthk,hkd->btd", heads, wo) + bo
    return output, p, a, keep


def assert_away_from_relative_cutoff(p, thresholds, margin=1e-6):
    """No p lies near theta * max p, so float32 and float64 agree."""
    theta = np.asarray(thresholds)[None, :, None, None]
    distance = np.abs(p - theta * p.max(-1, keepdims=True))
    assert np.min(distance) > margin, "pick another seed"


@pytest.mark.parametrize(
    "thresholds, min_keys",
    [([0.1, 0.01], 2), ([0.5, 0.2], 1), ([0.9, 0.3], 3), ([0.6, 0.6], 6)],
)
@pytest.mark.parametrize("training", [False, True])
def test_relative_rule_matches_numpy(thresholds, min_keys, training):
    layer = built_layer(
        mask_thresholds=thresholds, mask_rule="relative", min_keys=min_keys
    )
    x = random_tokens((3, 6, 8), seed=31, scale=2.0)
    expected, p, a, keep = numpy_rule_attention(
        x, x, layer.get_weights(), thresholds, "relative", min_keys
    )
    assert_away_from_relative_cutoff(p, thresholds)
    # Real sparsity and the floor are both exercised.
    assert keep.sum(-1).min() >= min(min_keys, 6)
    if min_keys < 6:
        assert keep.sum(-1).min() < 6
    output, scores = layer(
        x, x, return_attention_scores=True, training=training
    )
    assert_allclose(scores, a, atol=1e-5)
    assert_allclose(output, expected, atol=1e-4, rtol=1e-4)
    # The fused inference path (no scores requested) is masked too.
    assert_allclose(layer(x, x, training=training), expected, atol=1e-4)


def test_relative_rule_is_dense_for_flat_scores():
    # Equal scores: p = 1/S everywhere, and p >= theta * max p keeps all.
    layer = built_layer(
        mask_thresholds=[0.9, 0.5],
        mask_rule="relative",
        kernel_initializer="zeros",
        bias_initializer="zeros",
    )
    x = random_tokens((2, 6, 8), seed=32)
    _, scores = layer(x, x, return_attention_scores=True)
    assert_allclose(scores, np.full((2, 2, 6, 6), 1 / 6), atol=1e-6)


def test_relative_rule_with_padding_mask():
    thresholds = [0.3, 0.05]
    layer = built_layer(
        mask_thresholds=thresholds, mask_rule="relative", min_keys=3
    )
    x = random_tokens((2, 6, 8), seed=33, scale=2.0)
    mask = np.ones((2, 6, 6), bool)
    mask[0, :, 4:] = False
    mask[1, :, 1:] = False  # one valid key: fewer than min_keys
    expected, p, a, _ = numpy_rule_attention(
        x, x, layer.get_weights(), thresholds, "relative", 3, mask
    )
    output, scores = layer(
        x, x, attention_mask=mask, return_attention_scores=True
    )
    assert_allclose(scores, a, atol=1e-5)
    assert np.all(np.asarray(scores)[:, :, :, :][~np.broadcast_to(
        mask[:, None], a.shape)] == 0)  # fmt: skip
    assert_allclose(output, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("attention_axes", [(1,), (1, 2)])
def test_relative_rule_attention_axes(attention_axes):
    layer = MaskedMultiHeadAttention(
        2,
        4,
        mask_thresholds=[0.3, 0.05],
        mask_rule="relative",
        min_keys=3,
        attention_axes=attention_axes,
        kernel_initializer=keras.initializers.RandomNormal(0, 0.5),
    )
    x = random_tokens((2, 3, 4, 8), seed=34, scale=2.0)
    _, scores = layer(x, x, return_attention_scores=True)
    scores = np.asarray(scores)
    axes = tuple(range(scores.ndim - len(attention_axes), scores.ndim))
    kept = (scores > 0).sum(axis=axes)
    assert np.allclose(scores.sum(axis=axes), 1.0, atol=1e-5)
    assert kept.min() >= 3


@pytest.mark.parametrize("training", [False, True])
def test_straight_through_forward_is_the_paper_rule(training):
    thresholds = [0.1, 0.02]
    paper = built_layer(mask_thresholds=thresholds, mask_rule="paper")
    straight = built_layer(
        mask_thresholds=thresholds, mask_rule="straight_through"
    )
    straight.set_weights(paper.get_weights())
    x = random_tokens((3, 6, 8), seed=35)
    expected, p, a, _ = numpy_rule_attention(
        x, x, paper.get_weights(), thresholds, "straight_through"
    )
    assert_away_from_thresholds(p, thresholds)
    output, scores = straight(
        x, x, return_attention_scores=True, training=training
    )
    assert_allclose(scores, a, atol=1e-5)
    assert_allclose(output, expected, atol=1e-4, rtol=1e-4)
    assert_allclose(straight(x, x), paper(x, x), atol=1e-6)


def _kernel_gradients(layer, x, weights_of_scores):
    """Gradients of sum(a * R) w.r.t. the query and key kernels."""
    with tf.GradientTape() as tape:
        _, scores = layer(x, x, return_attention_scores=True)
        loss = tf.reduce_sum(scores * weights_of_scores)
    variables = [layer.query_dense.kernel, layer.key_dense.kernel]
    return [np.asarray(g) for g in tape.gradient(loss, variables)]


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
def test_straight_through_backward_is_the_dense_softmax():
    thresholds = [0.1, 0.02]
    straight = built_layer(
        mask_thresholds=thresholds, mask_rule="straight_through"
    )
    dense = built_layer(mask_thresholds=None)
    dense.set_weights(straight.get_weights())
    x = tf.constant(random_tokens((3, 6, 8), seed=36))
    r = tf.constant(random_tokens((3, 2, 6, 6), seed=37))
    for actual, expected in zip(
        _kernel_gradients(straight, x, r), _kernel_gradients(dense, x, r)
    ):
        assert np.abs(expected).max() > 1e-3
        assert_allclose(actual, expected, atol=1e-6, rtol=1e-5)


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


@pytest.mark.parametrize("rule", ["paper", "relative", "straight_through"])
def test_threshold_warmup(rule):
    thresholds = [0.3, 0.1]
    layer = built_layer(
        mask_thresholds=thresholds, mask_rule=rule, mask_warmup_steps=4
    )
    assert float(layer.mask_step) == 0.0
    x = random_tokens((3, 6, 8), seed=41, scale=2.0)
    weights = [w for w in layer.get_weights() if w.ndim > 0]
    for step in range(6):
        scale = min(1.0, step / 4)
        theta = [t * scale for t in thresholds]
        expected, p, a, _ = numpy_rule_attention(x, x, weights, theta, rule)
        # Inference calls read the schedule and do not advance it.
        _, scores = layer(x, x, return_attention_scores=True)
        assert_allclose(scores, a, atol=1e-5)
        assert float(layer.mask_step) == step
        output = layer(x, x, training=True)
        assert_allclose(output, expected, atol=1e-4, rtol=1e-4)
        assert float(layer.mask_step) == step + 1
    # At step 0 the thresholds are 0: every key is kept.
    fresh = built_layer(
        mask_thresholds=thresholds, mask_rule=rule, mask_warmup_steps=4
    )
    assert_allclose(fresh.mask_diagnostics(x)["mean_kept_keys"], [6.0, 6.0])


def test_warmup_counter_advances_under_xla_fit():
    layer = MaskedMultiHeadAttention(
        2, 4, mask_thresholds=[0.1, 0.01], mask_warmup_steps=10
    )
    inputs = keras.Input((6, 8))
    outputs = keras.layers.GlobalAveragePooling1D()(layer(inputs, inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(outputs))
    model.compile("sgd", "mse", jit_compile=True)
    x = random_tokens((12, 6, 8), seed=42)
    model.fit(x, np.zeros((12, 1)), batch_size=4, epochs=1, verbose=0)
    assert float(layer.mask_step) == 3.0
    assert not layer.mask_step.trainable
    model.predict(x, verbose=0)
    assert float(layer.mask_step) == 3.0


def test_no_step_counter_without_warmup():
    # Weights stay interchangeable with keras MHA when warm-up is off.
    layer = built_layer(mask_rule="relative")
    assert layer.mask_step is None
    assert len(layer.weights) == 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mask_rule="sparsemax"), "mask_rule"),
        (dict(mask_rule=None), "mask_rule"),
        (dict(min_keys=0), "min_keys"),
        (dict(min_keys=2.0), "min_keys"),
        (dict(mask_warmup_steps=-1), "mask_warmup_steps"),
        (dict(mask_warmup_steps=1.5), "mask_warmup_steps"),
    ],
)
def test_invalid_rule_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskedMultiHeadAttention(2, 4, **kwargs)


@pytest.mark.parametrize("rule", ["paper", "straight_through", "relative"])
def test_rule_config_round_trip(rule):
    layer = MaskedMultiHeadAttention(
        2, 4, mask_rule=rule, min_keys=3, mask_warmup_steps=7
    )
    clone = assert_config_round_trip(layer)
    assert clone.mask_rule == rule
    assert clone.min_keys == 3
    assert clone.mask_warmup_steps == 7


def test_rule_keras_save_load(tmp_path):
    inputs = keras.Input((6, 8))
    layer = MaskedMultiHeadAttention(
        2,
        4,
        mask_thresholds=[0.3, 0.05],
        mask_rule="relative",
        min_keys=3,
        mask_warmup_steps=8,
        kernel_initializer=keras.initializers.RandomNormal(0, 0.5),
    )
    model = keras.Model(inputs, layer(inputs, inputs))
    x = random_tokens((3, 6, 8), seed=43, scale=2.0)
    layer.mask_step.assign(5.0)  # mid warm-up: thresholds at 5/8
    reloaded = assert_keras_save_load(model, x, tmp_path)
    restored = reloaded.layers[-1]
    assert restored.mask_rule == "relative"
    assert restored.min_keys == 3
    assert restored.mask_warmup_steps == 8
    assert float(restored.mask_step) == 5.0


@pytest.mark.tensorflow_only(
    reason="tf.function(jit_compile=True): XLA on TensorFlow"
)
@pytest.mark.parametrize("rule", ["relative", "straight_through"])
def test_rules_xla_match_eager(rule):
    layer = built_layer(
        mask_thresholds=[0.3, 0.05], mask_rule=rule, mask_warmup_steps=3
    )
    layer.mask_step.assign(2.0)
    x = tf.constant(random_tokens((3, 6, 8), seed=44, scale=2.0))
    compiled = tf.function(
        lambda t: layer(t, t, return_attention_scores=True), jit_compile=True
    )
    for actual, expected in zip(
        compiled(x), layer(x, x, return_attention_scores=True)
    ):
        assert_allclose(actual, expected, atol=1e-5)


def test_default_rule_and_preset_warmup():
    from keras_adrec.models import get_preset
    from keras_adrec.models.sequential_presets import SEQUENCE_LAYER_BY_PRESET

    layer = MaskedMultiHeadAttention(2, 4)
    assert (layer.mask_rule, layer.min_keys, layer.mask_warmup_steps) == (
        "paper",
        2,
        0,
    )
    # The ranking presets use the winner of the v2 selection
    # (benchmarks/mask_rules.md); the sequential ones keep the layer's.
    for name in ["rm1", "rm2", "rm3"]:
        fields = get_preset(name)
        assert fields["mask_rule"] == "relative", name
        assert (fields["min_keys"], fields["mask_warmup_steps"]) == (2, 0)
    for name in sorted(SEQUENCE_LAYER_BY_PRESET):
        fields = get_preset(name)
        assert fields["mask_rule"] == "paper", name
        assert fields["mask_warmup_steps"] == 0, name
    # The paper's rule is one argument away.
    assert get_preset("rm1", mask_rule="paper")["mask_rule"] == "paper"


# ----------------------------------------------------------------------
# Issue 15: the faster formulations against their plain definitions


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("attention_axes", [None, (1, 2)])
def test_kth_largest_counts_repeats_like_a_sort(k, attention_axes):
    # Probabilities with many exact ties (repeated tokens give repeated
    # scores): the k-th largest of each row with repeats, as np.sort.
    rng = np.random.default_rng(k)
    shape = (3, 2, 4, 6) if attention_axes is None else (2, 2, 2, 3, 2, 3)
    values = rng.choice([0.0, 0.1, 0.25, 0.5], size=shape).astype("float32")
    layer = MaskedMultiHeadAttention(
        num_heads=2, key_dim=2, attention_axes=attention_axes
    )
    query_shape = (3, 4, 4) if attention_axes is None else (2, 2, 3, 4)
    layer.build(query_shape, query_shape)
    axes = layer.key_axes
    got = np.asarray(kth_largest(values, k, axes))
    flat = values.reshape(values.shape[: -len(axes)] + (-1,))
    expected = -np.sort(-flat, axis=-1)[..., k - 1]
    assert_allclose(got.reshape(expected.shape), expected, atol=0)
    by_top_k = np.asarray(top_k_kth(values, k, axes))
    assert_allclose(got, by_top_k, atol=0)


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
