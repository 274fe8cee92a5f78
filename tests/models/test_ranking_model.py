import keras
import numpy as np
import pytest

from keras_adrec.layers import MLP
from keras_adrec.layers import DotInteraction
from keras_adrec.layers import FeatureEmbedding
from keras_adrec.models import RankingModel
from keras_adrec.models import get_preset
from keras_adrec.models import interaction_names
from tests import test_case

VOCAB = [7, 5, 9]


def _batch(batch=8, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "dense": rng.random((batch, 4)).astype("float32"),
        "sparse": np.stack(
            [rng.integers(0, v, batch) for v in VOCAB], axis=1
        ).astype("int32"),
    }


def _small(interaction):
    return RankingModel.from_preset(
        "rm1",
        vocabulary_sizes=VOCAB,
        num_dense=4,
        interaction=interaction,
        embedding_dim=8,
        bottom_units=[16],
        top_units=[16],
        ffn_dim=16,
        cross_projection_dim=4,
    )


@pytest.mark.parametrize("interaction", interaction_names())
def test_output_is_composition_of_parts(interaction):
    keras.utils.set_random_seed(1)
    model = _small(interaction)
    x = _batch()
    out = keras.ops.convert_to_numpy(model(x))
    # Reference: run the parts by hand, in the order of eq. 8-9.
    bottom = model.bottom_stack(x["dense"])
    emb = model.embedding_layer(x["sparse"])
    tokens = keras.ops.concatenate([bottom[:, None, :], emb], axis=1)
    crossed = model.interaction(tokens)
    logits = model.top_stack(keras.ops.concatenate([bottom, crossed], -1))
    expected = 1 / (1 + np.exp(-keras.ops.convert_to_numpy(logits)))
    assert out.shape == (8, 1)
    test_case.assert_allclose(out, expected, atol=1e-5)


def test_injected_parts_and_save_load(tmp_path):
    model = RankingModel(
        embedding_layer=FeatureEmbedding(VOCAB, 4),
        bottom_stack=MLP([8, 4], final_activation="relu"),
        interaction=DotInteraction(),
        top_stack=MLP([8, 1]),
    )
    x = _batch()
    model(x)
    # 4 tokens -> 6 pairwise dots, plus the 4-wide dense vector.
    assert model.top_stack.dense_layers[0].kernel.shape == (10, 8)
    test_case.assert_keras_save_load(model, x, tmp_path)


@pytest.mark.parametrize("interaction", ["adrec", "dcnv2"])
def test_trained_model_save_load(interaction, tmp_path):
    model = _small(interaction)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x = _batch(64)
    y = np.random.default_rng(0).integers(0, 2, (64, 1)).astype("float32")
    model.fit(x, y, batch_size=16, verbose=0)
    test_case.assert_keras_save_load(model, x, tmp_path)


def test_preset_fields_reach_layers():
    model = RankingModel.from_preset(
        "rm1", vocabulary_sizes=VOCAB, num_dense=13, num_heads=4
    )
    model(
        {
            "dense": np.zeros((2, 13), "float32"),
            "sparse": np.zeros((2, 3), "int32"),
        }
    )
    assert model.interaction.num_heads == 4
    assert model.embedding_layer.embedding_dim == 16
    # RM1: bottom 13-512-256-64-16, top 512-256-1 on 16 + 4*16 inputs.
    assert [d.units for d in model.bottom_stack.dense_layers] == [
        512,
        256,
        64,
        16,
    ]
    assert [d.units for d in model.top_stack.dense_layers] == [512, 256, 1]
    assert model.top_stack.dense_layers[0].kernel.shape[0] == 16 + 4 * 16


def test_embedding_l2_adds_the_penalty_to_the_loss():
    inputs = {
        "dense": np.zeros((2, 13), "float32"),
        "sparse": np.ones((2, 3), "int32"),
    }
    plain = RankingModel.from_preset(
        "rm1", vocabulary_sizes=VOCAB, num_dense=13
    )
    plain(inputs)
    assert plain.embedding_layer.embeddings_regularizer is None
    assert plain.losses == []
    model = RankingModel.from_preset(
        "rm1", vocabulary_sizes=VOCAB, num_dense=13, embedding_l2=1e-3
    )
    model(inputs)
    table = model.embedding_layer.embeddings.numpy()
    expected = 1e-3 * np.sum(np.square(table))
    (penalty,) = model.losses
    np.testing.assert_allclose(float(penalty), expected, rtol=1e-5)


def test_presets_carry_table_1():
    rm1, rm2, rm3 = (get_preset(n) for n in ("rm1", "rm2", "rm3"))
    assert (rm1.embedding_dim, rm1.num_heads, rm1.ffn_dim) == (
        16,
        2,
        128,
    )
    assert (rm1.learning_rate, rm1.batch_size) == (0.1, 128)
    assert (rm2.embedding_dim, rm2.num_heads, rm2.ffn_dim) == (
        64,
        8,
        512,
    )
    assert rm2.batch_size == 1024 and len(rm2.mask_thresholds) == 8
    assert rm3.dataset == "avazu" and rm3.learning_rate == 0.2
    assert all(p.dropout == 0.01 for p in (rm1, rm2, rm3))


def test_invalid_usage():
    with pytest.raises(ValueError, match="Unknown preset"):
        get_preset("rm9")
    with pytest.raises(ValueError, match="Unknown preset field"):
        get_preset("rm1", num_head=3)
    with pytest.raises(ValueError, match="Unknown interaction"):
        RankingModel.from_preset("rm1", VOCAB, 4, interaction="cross")
    with pytest.raises(ValueError, match="'dense' and 'sparse'"):
        _small("dot")(np.zeros((2, 4)))


MULTI_HOT_VOCAB = [6, 4]


def _multi_hot_batch(batch=8, seed=0):
    rng = np.random.default_rng(seed)
    x = _batch(batch, seed)
    bags = np.stack(
        [rng.integers(0, v, (batch, 3)) for v in MULTI_HOT_VOCAB], axis=1
    )
    # Pad about a third of the slots, some bags wholly.
    x["multi_hot"] = np.where(rng.random(bags.shape) < 0.35, -1, bags).astype(
        "int32"
    )
    return x


def _small_multi_hot(interaction, combiner="mean"):
    return RankingModel.from_preset(
        "rm1",
        vocabulary_sizes=VOCAB,
        num_dense=4,
        interaction=interaction,
        multi_hot_vocabulary_sizes=MULTI_HOT_VOCAB,
        combiner=combiner,
        embedding_dim=8,
        bottom_units=[16],
        top_units=[16],
        ffn_dim=16,
        cross_projection_dim=4,
    )


@pytest.mark.parametrize("interaction", ["adrec", "dot", "dcnv2"])
def test_multi_hot_tokens_join_the_interaction(interaction):
    keras.utils.set_random_seed(1)
    model = _small_multi_hot(interaction, combiner="sum")
    x = _multi_hot_batch()
    out = keras.ops.convert_to_numpy(model(x))
    tokens, bottom = model.interaction_tokens(x)
    # bottom + 3 single-valued + 2 multi-hot tokens.
    assert tuple(tokens.shape) == (8, 1 + len(VOCAB) + 2, 8)
    test_case.assert_allclose(
        tokens[:, 1 + len(VOCAB) :], model.multi_hot_layer(x["multi_hot"])
    )
    crossed = model.interaction(tokens)
    logits = model.top_stack(keras.ops.concatenate([bottom, crossed], -1))
    expected = 1 / (1 + np.exp(-keras.ops.convert_to_numpy(logits)))
    test_case.assert_allclose(out, expected, atol=1e-5)
    # The bags reach the output.
    other = dict(x, multi_hot=np.full_like(x["multi_hot"], -1))
    assert not np.allclose(out, keras.ops.convert_to_numpy(model(other)))


@pytest.mark.parametrize("combiner", ["mean", "attention"])
def test_multi_hot_model_trains_and_saves(combiner, tmp_path):
    model = _small_multi_hot("adrec", combiner)
    assert model.multi_hot_layer.combiner == combiner
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x = _multi_hot_batch(64)
    y = np.random.default_rng(0).integers(0, 2, (64, 1)).astype("float32")
    model.fit(x, y, batch_size=16, verbose=0)
    reloaded = test_case.assert_keras_save_load(model, x, tmp_path)
    assert reloaded.multi_hot_layer.vocabulary_sizes == MULTI_HOT_VOCAB


def test_multi_hot_model_needs_its_key():
    model = _small_multi_hot("dot")
    model(_multi_hot_batch())
    with pytest.raises(ValueError, match="'multi_hot' key"):
        model(_batch())
    # Without multi-hot features the config has no such layer.
    assert "multi_hot_layer" not in _small("dot").get_config()
