"""Tests for `AdRecInteraction` against a numpy stack of Ad-Rec layers."""

import keras
import numpy as np
import pytest

from keras_adrec.layers import AdRecInteraction
from tests.layers.attention.references import assert_away_from_thresholds
from tests.layers.blocks.test_adrec_block import numpy_layer_norm
from tests.layers.blocks.test_adrec_block import randomize_weights
from tests.layers.blocks.test_adrec_block import reference_for
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip
from tests.test_case import assert_keras_save_load
from tests.test_case import functional_model

BATCH, TOKENS, DIM = 3, 5, 8


def random_features(seed=0, batch=BATCH, tokens=TOKENS, dim=DIM):
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(batch, dim)).astype("float32") for _ in range(tokens)
    ]


def numpy_interaction(layer, features):
    """Stack, add the position embedding, run numpy blocks, flatten.

    Returns `(flat_output, maps)` with the numpy `(p, a)` of every block.
    """
    z = np.stack(features, axis=1).astype("float64")
    if layer.positional_embedding:
        z = z + layer.position_embedding.numpy()
    maps = []
    for block in layer.blocks:
        z, p, a = reference_for(block, z)
        maps.append((p, a))
    return z.reshape(z.shape[0], -1), maps


def built_interaction(seed=0, **kwargs):
    kwargs.setdefault("ffn_dim", 12)
    layer = AdRecInteraction(**kwargs)
    layer.build([(None, DIM)] * TOKENS)
    randomize_weights(layer, seed=seed)
    return layer


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(1234)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("thresholds", ["geometric", None])
def test_matches_numpy_reference(num_layers, norm_first, thresholds):
    layer = built_interaction(
        num_layers=num_layers,
        norm_first=norm_first,
        mask_thresholds=thresholds,
        mask_rule="paper",
    )
    features = random_features(seed=1)
    expected, maps = numpy_interaction(layer, features)
    if thresholds is not None:
        for p, _ in maps:
            assert_away_from_thresholds(p, layer.mask_thresholds)
    output = layer(features)
    assert output.shape == (BATCH, TOKENS * DIM)
    assert_allclose(output, expected, atol=1e-4, rtol=1e-4)
    assert_allclose(layer(features, training=False), expected, atol=1e-4)


def test_list_and_tensor_inputs_agree():
    layer = built_interaction(num_layers=2)
    features = random_features(seed=2)
    assert_allclose(layer(np.stack(features, axis=1)), layer(features))


def test_output_is_token_major_flatten():
    # flatten(z_L): token 0 (the bottom-MLP vector) first, then embeddings.
    layer = built_interaction(num_layers=1)
    features = random_features(seed=3)
    block_output = layer.blocks[0](np.stack(features, axis=1))
    output = np.asarray(layer(features))
    for token in range(TOKENS):
        assert_allclose(
            output[:, token * DIM : (token + 1) * DIM],
            block_output[:, token],
        )


def test_positional_embedding():
    layer = built_interaction(num_layers=1, positional_embedding=True)
    assert tuple(layer.position_embedding.shape) == (TOKENS, DIM)
    features = random_features(seed=4)
    expected, _ = numpy_interaction(layer, features)
    assert_allclose(layer(features), expected, atol=1e-4)
    without = AdRecInteraction(ffn_dim=12)
    without.build([(None, DIM)] * TOKENS)
    without.set_weights(layer.get_weights()[1:])
    assert np.abs(np.asarray(without(features)) - expected).max() > 1e-2
    assert len(without.weights) == len(layer.weights) - 1


def test_attention_maps():
    layer = built_interaction(num_layers=2, mask_thresholds=[0.1, 0.05])
    features = random_features(seed=5)
    _, expected = numpy_interaction(layer, features)
    maps = layer.attention_maps(features)
    assert len(maps) == 2
    for actual, (p, a) in zip(maps, expected):
        assert actual["unmasked"].shape == (BATCH, 2, TOKENS, TOKENS)
        assert_allclose(actual["unmasked"], p, atol=1e-5)
        assert_allclose(actual["masked"], a, atol=1e-5)
        assert_allclose(
            np.sum(actual["masked"], -1), np.ones((BATCH, 2, TOKENS)), 1e-5
        )


def test_attention_maps_first_block_sees_normalised_tokens():
    layer = built_interaction(num_layers=1, mask_thresholds=None)
    features = random_features(seed=6)
    block = layer.blocks[0]
    z = numpy_layer_norm(
        np.stack(features, axis=1).astype("float64"),
        block.attention_norm.gamma.numpy(),
        block.attention_norm.beta.numpy(),
        1e-5,
    )
    maps = layer.attention_maps(features)[0]
    _, scores = block.attention_layer(
        z.astype("float32"), z.astype("float32"), return_attention_scores=True
    )
    assert_allclose(maps["unmasked"], scores, atol=1e-5)
    assert_allclose(maps["masked"], maps["unmasked"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_layers=0), "num_layers"),
        (dict(num_layers=1.0), "num_layers"),
        (dict(num_heads=0), "num_heads"),
        (dict(ffn_dim=-1), "ffn_dim"),
        (dict(dropout=1.0), "dropout"),
        (dict(mask_thresholds=[0.1]), "one threshold"),
        (dict(positional_embedding="yes"), "positional_embedding"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdRecInteraction(**kwargs)


@pytest.mark.parametrize(
    "input_shape, message",
    [
        ([(None, 8), (None, 4)], "same dim"),
        ([(None, 2, 8), (None, 2, 8)], "same dim"),
        ((None, 8), "batch, tokens, dim"),
        ([(None, 6)] * 3, "dim=6 must be divisible by num_heads=4"),
    ],
)
def test_invalid_input_shapes(input_shape, message):
    layer = AdRecInteraction(num_heads=4 if "dim=6" in message else 2)
    with pytest.raises(ValueError, match=message):
        layer.build(input_shape)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(num_layers=2, mask_thresholds=None, positional_embedding=True),
        dict(norm_first=False, use_layer_norm=False, seed=5),
    ],
)
def test_config_round_trip(kwargs):
    layer = AdRecInteraction(**kwargs)
    clone = assert_config_round_trip(layer)
    assert clone.mask_thresholds == layer.mask_thresholds
    assert len(clone.blocks) == layer.num_layers


def test_functional_model_and_keras_save_load(tmp_path):
    layer = AdRecInteraction(
        num_layers=2, ffn_dim=12, positional_embedding=True
    )
    model = functional_model(layer, [(DIM,)] * TOKENS)
    features = random_features(seed=9)
    expected, _ = numpy_interaction(layer, features)
    assert_allclose(model.predict(features, verbose=0), expected, atol=1e-4)
    reloaded = assert_keras_save_load(model, features, tmp_path)
    assert isinstance(reloaded.layers[-1], AdRecInteraction)


@pytest.mark.parametrize("rule", ["relative", "straight_through"])
def test_rules_match_numpy_reference(rule):
    layer = built_interaction(
        num_layers=2, mask_thresholds=[0.3, 0.05], mask_rule=rule
    )
    assert all(b.attention_layer.mask_rule == rule for b in layer.blocks)
    features = random_features(seed=2)
    expected, _ = numpy_interaction(layer, features)
    assert_allclose(layer(features), expected, atol=1e-4, rtol=1e-4)


def test_mask_diagnostics_per_block():
    layer = built_interaction(
        num_layers=2, mask_thresholds=[0.5, 0.0], mask_rule="paper"
    )
    features = random_features(seed=3)
    report = layer.mask_diagnostics(features)
    assert len(report) == 2
    for block, entry in zip(layer.blocks, report):
        assert entry["mean_kept_keys"].shape == (2,)
        # Theta 0.5: exactly one key per row; theta 0: every key.
        assert_allclose(entry["mean_kept_keys"], [1.0, TOKENS])
        assert_allclose(entry["single_key_fraction"], [1.0, 0.0])


def test_rule_arguments_round_trip(tmp_path):
    layer = AdRecInteraction(
        num_heads=2,
        ffn_dim=12,
        mask_rule="relative",
        min_keys=4,
        mask_warmup_steps=6,
    )
    clone = assert_config_round_trip(layer)
    assert (clone.mask_rule, clone.min_keys, clone.mask_warmup_steps) == (
        "relative",
        4,
        6,
    )
    assert clone.blocks[0].min_keys == 4
