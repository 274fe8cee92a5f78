"""`AdRecInteraction(positional_embedding="sinusoidal")` against numpy."""

import math

import keras
import numpy as np
import pytest

from keras_adrec.layers import AdRecInteraction
from keras_adrec.layers.feature_interaction.adrec_interaction import (
    sinusoidal_positions,
)
from keras_adrec.models import get_preset
from tests.layers.blocks.test_adrec_block import randomize_weights
from tests.layers.blocks.test_adrec_block import reference_for
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip

TOKENS, DIM = 5, 8


def oracle_table(num_positions, dim):
    """Element by element: sin for even columns, cos for odd ones."""
    table = np.zeros((num_positions, dim))
    for t in range(num_positions):
        for j in range(dim):
            angle = t / 10000.0 ** ((j - j % 2) / dim)
            table[t, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table


@pytest.mark.parametrize("shape", [(5, 8), (27, 16), (4, 7)])
def test_table_matches_oracle(shape):
    table = sinusoidal_positions(*shape)
    assert table.shape == shape and table.dtype == np.float32
    assert_allclose(table, oracle_table(*shape), atol=1e-6)


def test_interaction_adds_the_fixed_table():
    keras.utils.set_random_seed(7)
    layer = AdRecInteraction(ffn_dim=12, positional_embedding="sinusoidal")
    layer.build([(None, DIM)] * TOKENS)
    randomize_weights(layer, seed=0)
    plain = AdRecInteraction(ffn_dim=12)
    plain.build([(None, DIM)] * TOKENS)
    # No trainable position weights: the same weights fit both layers.
    assert len(layer.weights) == len(plain.weights)
    plain.set_weights(layer.get_weights())
    rng = np.random.default_rng(3)
    features = [rng.normal(size=(3, DIM)).astype("float32")] * TOKENS
    z = np.stack(features, axis=1).astype("float64")
    z = z + oracle_table(TOKENS, DIM)
    for block in layer.blocks:
        z, _, _ = reference_for(block, z)
    expected = z.reshape(3, -1)
    assert_allclose(layer(features), expected, atol=1e-4)
    # Identical tokens stay identical without positions, not with them.
    out = np.asarray(plain(features)).reshape(3, TOKENS, DIM)
    assert np.abs(out[:, 0] - out[:, 1]).max() < 1e-5
    assert (
        np.abs(
            expected.reshape(3, TOKENS, DIM)[:, 0]
            - expected.reshape(3, TOKENS, DIM)[:, 1]
        ).max()
        > 1e-2
    )


def test_config_round_trip_keeps_sinusoidal():
    layer = AdRecInteraction(positional_embedding="sinusoidal")
    assert_config_round_trip(layer)
    assert layer.get_config()["positional_embedding"] == "sinusoidal"


@pytest.mark.parametrize("value", ["yes", "learned", 1])
def test_invalid_values(value):
    with pytest.raises(ValueError, match="positional_embedding"):
        AdRecInteraction(positional_embedding=value)


def test_preset_accepts_sinusoidal_only_as_a_string_value():
    config = get_preset("rm1", positional_embedding="sinusoidal")
    assert config.positional_embedding == "sinusoidal"
    assert get_preset("rm1", positional_embedding=True).positional_embedding
    with pytest.raises(ValueError, match="positional_embedding"):
        get_preset("rm1", positional_embedding="sine")
