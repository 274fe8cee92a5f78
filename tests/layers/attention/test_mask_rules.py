"""The keep rules (`mask_rules`) against numpy, and their arguments."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers import MaskedMultiHeadAttention
from keras_adrec.layers.attention.mask_rules import MASK_RULE_CLASSES
from keras_adrec.layers.attention.mask_rules import MASK_RULES
from keras_adrec.layers.attention.mask_rules import MaskRule
from keras_adrec.layers.attention.mask_rules import get_mask_rule
from keras_adrec.layers.attention.mask_rules import kth_largest
from keras_adrec.layers.attention.mask_rules import top_k_kth
from tests.layers.attention.references import assert_away_from_relative_cutoff
from tests.layers.attention.references import assert_away_from_thresholds
from tests.layers.attention.references import built_layer
from tests.layers.attention.references import numpy_rule_attention
from tests.layers.attention.references import random_tokens
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip
from tests.test_case import assert_keras_save_load


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
        assert fields.mask_rule == "relative", name
        assert (fields.min_keys, fields.mask_warmup_steps) == (2, 0)
    for name in sorted(SEQUENCE_LAYER_BY_PRESET):
        fields = get_preset(name)
        assert fields.mask_rule == "paper", name
        assert fields.mask_warmup_steps == 0, name
    # The paper's rule is one argument away.
    assert get_preset("rm1", mask_rule="paper").mask_rule == "paper"


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


def test_rules_are_found_by_name_in_one_table():
    assert MASK_RULES == ("paper", "straight_through", "relative")
    for name, rule_class in MASK_RULE_CLASSES.items():
        rule = get_mask_rule(name, key_axes=(3,), min_keys=3)
        assert isinstance(rule, rule_class)
        assert (rule.name, rule.key_axes, rule.min_keys) == (name, (3,), 3)
    with pytest.raises(ValueError, match="mask_rule"):
        get_mask_rule("argmax", key_axes=(3,))


class _ArgmaxRule(MaskRule):
    """Keeps only the most probable key: hard attention."""

    name = "argmax_for_test"

    def keep(self, probabilities, thresholds, row_max):
        return keras.ops.greater_equal(probabilities, row_max)


def test_a_registered_rule_is_used_by_the_layer(monkeypatch):
    monkeypatch.setitem(MASK_RULE_CLASSES, _ArgmaxRule.name, _ArgmaxRule)
    layer = built_layer(mask_thresholds=[0.1, 0.1], mask_rule=_ArgmaxRule.name)
    x = random_tokens((2, 6, 8), seed=50)
    _, weights = layer(x, x, return_attention_scores=True)
    weights = np.asarray(weights)
    assert set(np.unique(weights)) == {0.0, 1.0}
    assert_allclose(weights.sum(axis=-1), 1.0, atol=0)
    config = layer.get_config()
    assert config["mask_rule"] == _ArgmaxRule.name
