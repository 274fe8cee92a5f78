"""Tests for `AdRecBlock` against numpy pre-LN / post-LN / no-LN math."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers import AdRecBlock
from tests.layers.attention.references import assert_away_from_relative_cutoff
from tests.layers.attention.references import assert_away_from_thresholds
from tests.layers.attention.references import numpy_attention
from tests.layers.attention.references import numpy_rule_attention
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip
from tests.test_case import assert_keras_save_load
from tests.test_case import functional_model

_erf = np.vectorize(math.erf)

NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
}


def numpy_layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def numpy_block(
    x,
    attention_weights,
    norm_weights,
    ffn_weights,
    thresholds,
    norm_first=True,
    activation="relu",
    epsilon=1e-5,
    attention_mask=None,
    rule="paper",
    min_keys=2,
):
    """One Ad-Rec layer (paper eq. 6-7, or the post-LN variant) in numpy.

    `norm_weights` is `None` (no LayerNorm) or
    `[(gamma1, beta1), (gamma2, beta2)]`; `ffn_weights` is
    `[w1, b1, w2, b2]`. Returns `(output, p, a)` where p and a are the
    attention probabilities before and after the threshold mask.
    """
    x = np.float64(x)
    w1, b1, w2, b2 = [np.float64(w) for w in ffn_weights]
    act = NUMPY_ACTIVATIONS[activation]

    def ffn(h):
        return act(h @ w1 + b1) @ w2 + b2

    def attend(h):
        if thresholds is None or rule != "relative":
            # The straight-through forward pass is the paper's.
            return numpy_attention(
                h, h, attention_weights, thresholds, attention_mask
            )
        out, p, a, _ = numpy_rule_attention(
            h, h, attention_weights, thresholds, rule, min_keys, attention_mask
        )
        return out, p, a

    if norm_weights is None:
        out, p, a = attend(x)
        z = x + out
        return z + ffn(z), p, a
    (g1, be1), (g2, be2) = norm_weights
    if norm_first:
        out, p, a = attend(numpy_layer_norm(x, g1, be1, epsilon))
        z = x + out
        return z + ffn(numpy_layer_norm(z, g2, be2, epsilon)), p, a
    out, p, a = attend(x)
    z = numpy_layer_norm(x + out, g1, be1, epsilon)
    return numpy_layer_norm(z + ffn(z), g2, be2, epsilon), p, a


def block_weights(block):
    """The numpy weights of an `AdRecBlock`, for `numpy_block`."""
    norms = None
    if block.use_layer_norm:
        norms = [
            (layer.gamma.numpy(), layer.beta.numpy())
            for layer in (block.attention_norm, block.ffn_norm)
        ]
    ffn = [
        block.ffn_intermediate.kernel.numpy(),
        block.ffn_intermediate.bias.numpy(),
        block.ffn_output.kernel.numpy(),
        block.ffn_output.bias.numpy(),
    ]
    return block.attention_layer.get_weights(), norms, ffn


def randomize_weights(layer, seed=0, scale=0.5):
    """Random weights everywhere (biases and LayerNorm included)."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            (rng.normal(size=w.shape) * scale + (w == 1) * 1.0).astype(w.dtype)
            for w in layer.get_weights()
        ]
    )


def random_tokens(shape, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * scale).astype("float32")


def reference_for(block, x, **kwargs):
    attention, norms, ffn = block_weights(block)
    return numpy_block(
        x,
        attention,
        norms,
        ffn,
        block.mask_thresholds,
        norm_first=block.norm_first,
        activation=keras.activations.serialize(block.activation),
        epsilon=block.layer_norm_epsilon,
        rule=block.mask_rule,
        min_keys=block.min_keys,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(1234)


@pytest.fixture
def mixed_float16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("use_layer_norm", [True, False])
@pytest.mark.parametrize("thresholds", ["geometric", [0.2, 0.05], None])
def test_matches_numpy_reference(norm_first, use_layer_norm, thresholds):
    block = AdRecBlock(
        num_heads=2,
        ffn_dim=12,
        mask_thresholds=thresholds,
        norm_first=norm_first,
        use_layer_norm=use_layer_norm,
        dropout=0.1,
        mask_rule="paper",
    )
    block.build((None, 6, 8))
    randomize_weights(block)
    x = random_tokens((3, 6, 8), seed=1)
    expected, p, a = reference_for(block, x)
    if thresholds is not None:
        assert_away_from_thresholds(p, block.mask_thresholds)
        assert np.any(a != p), "the mask must drop something here"
    assert_allclose(block(x), expected, atol=1e-4, rtol=1e-4)
    assert_allclose(block(x, training=False), expected, atol=1e-4, rtol=1e-4)


def test_gelu_and_three_heads():
    block = AdRecBlock(
        num_heads=3,
        ffn_dim=10,
        activation="gelu",
        mask_thresholds=[0.3, 0.1, 0],
        mask_rule="paper",
    )
    block.build((None, 5, 9))
    randomize_weights(block, seed=2)
    x = random_tokens((2, 5, 9), seed=3)
    expected, p, _ = reference_for(block, x)
    assert_away_from_thresholds(p, block.mask_thresholds)
    assert_allclose(block(x), expected, atol=1e-4, rtol=1e-4)


def test_padding_attention_mask():
    block = AdRecBlock(
        num_heads=2, ffn_dim=12, mask_thresholds=[0.1, 0.05], mask_rule="paper"
    )
    block.build((None, 6, 8))
    randomize_weights(block, seed=4)
    x = random_tokens((3, 6, 8), seed=5)
    mask = np.random.default_rng(0).random((3, 6, 6)) > 0.3
    mask[..., 0] = True
    expected, p, _ = reference_for(block, x, attention_mask=mask)
    assert_away_from_thresholds(
        np.where(mask[:, None], p, 0.5), block.mask_thresholds
    )
    assert_allclose(block(x, attention_mask=mask), expected, atol=1e-4)


def test_dropout_active_only_in_training():
    block = AdRecBlock(num_heads=2, ffn_dim=12, dropout=0.3, seed=1)
    x = random_tokens((4, 6, 8), seed=6)
    inference = np.asarray(block(x, training=False))
    expected, _, _ = reference_for(block, x)
    assert_allclose(inference, expected, atol=1e-4)
    first = np.asarray(block(x, training=True))
    second = np.asarray(block(x, training=True))
    assert np.abs(first - inference).max() > 1e-3
    assert np.abs(first - second).max() > 1e-3
    no_dropout = AdRecBlock(num_heads=2, ffn_dim=12, dropout=0.0)
    no_dropout.build((None, 6, 8))
    no_dropout.set_weights(block.get_weights())
    assert_allclose(no_dropout(x, training=True), inference, atol=1e-5)


def test_residual_dropout_drops_whole_entries():
    # Zero attention and FFN outputs except a constant FFN bias of 1: the
    # block output is x + Dropout(1), so dropout shows as x or x + 1 / 0.8.
    block = AdRecBlock(num_heads=2, ffn_dim=4, dropout=0.2, seed=3)
    block.build((None, 50, 8))
    block.set_weights([np.zeros_like(w) for w in block.get_weights()])
    block.ffn_output.bias.assign(np.ones(8, "float32"))
    x = random_tokens((64, 50, 8), seed=7)
    added = np.asarray(block(x, training=True)) - x
    np.testing.assert_allclose(
        np.minimum(np.abs(added), np.abs(added - 1.25)), 0.0, atol=1e-5
    )
    assert abs((np.abs(added) < 1e-3).mean() - 0.2) < 0.02


@pytest.mark.tensorflow_only(reason="tf.GradientTape")
def test_mixed_float16_large_inputs_stay_finite(mixed_float16):
    block = AdRecBlock(num_heads=2, ffn_dim=16)
    x = tf.constant(random_tokens((4, 6, 8), seed=8, scale=1e3))
    with tf.GradientTape() as tape:
        output = block(x, training=True)
        loss = tf.reduce_sum(tf.cast(output, "float32") ** 2) * 1e-6
    grads = tape.gradient(loss, block.trainable_variables)
    assert output.dtype == "float16"
    assert np.all(np.isfinite(output))
    for grad in grads:
        assert np.all(np.isfinite(grad))


def test_attention_maps():
    block = AdRecBlock(num_heads=2, ffn_dim=12, mask_thresholds=[0.1, 0.05])
    block.build((None, 6, 8))
    randomize_weights(block, seed=9)
    x = random_tokens((2, 6, 8), seed=10)
    _, p, a = reference_for(block, x)
    maps = block.attention_maps(x)
    assert_allclose(maps["unmasked"], p, atol=1e-5)
    assert_allclose(maps["masked"], a, atol=1e-5)


def test_xla_training_step_in_fit():
    inputs = keras.Input((6, 8))
    outputs = keras.layers.Dense(1)(
        keras.layers.Flatten()(AdRecBlock(2, 12, dropout=0.1)(inputs))
    )
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.01), "mse", jit_compile=True)
    x = random_tokens((32, 6, 8), seed=11)
    y = random_tokens((32, 1), seed=12)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    changed = [
        np.abs(a - b).max() > 0 for a, b in zip(model.get_weights(), before)
    ]
    assert all(changed)


def test_divisibility_error_names_both_numbers():
    block = AdRecBlock(num_heads=3, ffn_dim=8)
    with pytest.raises(ValueError, match="dim=8.*num_heads=3"):
        block.build((None, 5, 8))


def test_rank_error():
    with pytest.raises(ValueError, match="batch, tokens, dim"):
        AdRecBlock(num_heads=2, ffn_dim=8).build((None, 8))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_heads=0), "num_heads"),
        (dict(ffn_dim=0), "ffn_dim"),
        (dict(ffn_dim=3.5), "ffn_dim"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=-0.1), "dropout"),
        (dict(attention_dropout=1.5), "attention_dropout"),
        (dict(norm_first="yes"), "norm_first"),
        (dict(use_layer_norm=1), "use_layer_norm"),
        (dict(layer_norm_epsilon=0.0), "layer_norm_epsilon"),
        (dict(mask_thresholds=[0.1, 0.2, 0.3]), "one threshold"),
        (dict(mask_thresholds=[0.1, 2.0]), r"\[0, 1\)"),
    ],
)
def test_invalid_arguments(kwargs, message):
    arguments = dict(num_heads=2, ffn_dim=8)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        AdRecBlock(**arguments)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(mask_thresholds=None, norm_first=False, activation="gelu"),
        dict(mask_thresholds=[0.5, 0.0], use_layer_norm=False, seed=3),
    ],
)
def test_config_round_trip(kwargs):
    block = AdRecBlock(num_heads=2, ffn_dim=8, **kwargs)
    clone = assert_config_round_trip(block)
    assert clone.mask_thresholds == block.mask_thresholds


def test_functional_model_and_keras_save_load(tmp_path):
    block = AdRecBlock(num_heads=2, ffn_dim=12, mask_thresholds=[0.2, 0.05])
    model = functional_model(block, (6, 8))
    x = random_tokens((3, 6, 8), seed=13)
    expected, _, _ = reference_for(block, x)
    assert_allclose(model.predict(x, verbose=0), expected, atol=1e-4)
    reloaded = assert_keras_save_load(model, x, tmp_path)
    assert isinstance(reloaded.layers[-1], AdRecBlock)
    assert reloaded.layers[-1].mask_thresholds == [0.2, 0.05]


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize(
    "rule, thresholds, min_keys",
    [
        ("relative", [0.3, 0.05], 2),
        ("relative", [0.5, 0.5], 3),
        ("straight_through", [0.2, 0.05], 2),
    ],
)
def test_rules_match_numpy_reference(norm_first, rule, thresholds, min_keys):
    block = AdRecBlock(
        num_heads=2,
        ffn_dim=12,
        mask_thresholds=thresholds,
        mask_rule=rule,
        min_keys=min_keys,
        norm_first=norm_first,
    )
    block.build((None, 6, 8))
    randomize_weights(block, scale=1.0)
    x = random_tokens((3, 6, 8), seed=2, scale=2.0)
    expected, p, a = reference_for(block, x)
    assert block.attention_layer.mask_rule == rule
    assert block.attention_layer.min_keys == min_keys
    if rule == "relative":
        assert_away_from_relative_cutoff(p, thresholds)
    else:
        assert_away_from_thresholds(p, thresholds)
    assert np.any(a != p), "the mask must drop something here"
    assert_allclose(block(x, training=False), expected, atol=1e-4, rtol=1e-4)
    maps = block.attention_maps(x)
    assert_allclose(maps["masked"], a, atol=1e-5)


def test_block_mask_diagnostics_and_warmup():
    block = AdRecBlock(
        num_heads=2,
        ffn_dim=8,
        mask_thresholds=[0.3, 0.05],
        mask_rule="relative",
        mask_warmup_steps=5,
        dropout=0.0,
    )
    x = random_tokens((3, 6, 8), seed=3)
    report = block.mask_diagnostics(x)
    # Step 0 of the warm-up: thresholds 0, every key kept.
    assert_allclose(report["thresholds"], [0.0, 0.0])
    assert_allclose(report["mean_kept_keys"], [6.0, 6.0])
    block(x, training=True)
    block(x, training=True)
    assert float(block.attention_layer.mask_step) == 2.0
    assert_allclose(
        block.mask_diagnostics(x)["thresholds"], [0.12, 0.02], atol=1e-7
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mask_rule="hard"), "mask_rule"),
        (dict(min_keys=0), "min_keys"),
        (dict(mask_warmup_steps=-2), "mask_warmup_steps"),
    ],
)
def test_invalid_rule_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdRecBlock(num_heads=2, ffn_dim=8, **kwargs)


def test_rule_config_round_trip_and_keras_save_load(tmp_path):
    block = AdRecBlock(
        num_heads=2,
        ffn_dim=12,
        mask_thresholds=[0.3, 0.05],
        mask_rule="straight_through",
        min_keys=3,
        mask_warmup_steps=9,
    )
    clone = assert_config_round_trip(block)
    assert (clone.mask_rule, clone.min_keys, clone.mask_warmup_steps) == (
        "straight_through",
        3,
        9,
    )
    model = functional_model(block, (6, 8))
    x = random_tokens((3, 6, 8), seed=14)
    reloaded = assert_keras_save_load(model, x, tmp_path)
    restored = reloaded.layers[-1]
    assert restored.mask_rule == "straight_through"
    assert restored.attention_layer.mask_warmup_steps == 9
