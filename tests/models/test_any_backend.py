"""What a new user does on any Keras backend: train, save, reload, predict.

These run on TensorFlow in the plain suite and on JAX in
`tests/backends/test_jax_suite.py` (`KERAS_BACKEND=jax`).
"""

import keras
import numpy as np
import pytest

from keras_adrec.layers import AdRecInteraction
from keras_adrec.layers import MaskedMultiHeadAttention
from keras_adrec.models import RankingModel
from tests import test_case

VOCAB = [7, 5, 9]


def _batch(batch, seed=0):
    rng = np.random.default_rng(seed)
    x = {
        "dense": rng.random((batch, 4)).astype("float32"),
        "sparse": np.stack(
            [rng.integers(0, v, batch) for v in VOCAB], axis=1
        ).astype("int32"),
    }
    # A label the model can learn: the first categorical feature is even.
    y = (x["sparse"][:, :1] % 2 == 0).astype("float32")
    return x, y


def test_adrec_interaction_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    layer = AdRecInteraction(num_heads=2, ffn_dim=16, num_layers=2)
    model = test_case.functional_model(layer, [(8,)] * 5)
    features = [
        np.random.default_rng(i).normal(size=(4, 8)).astype("float32")
        for i in range(5)
    ]
    reloaded = test_case.assert_keras_save_load(model, features, tmp_path)
    assert isinstance(reloaded.layers[-1], AdRecInteraction)


def test_attention_dropout_in_training():
    # On TensorFlow the Philox path draws the mask; elsewhere
    # `keras.random.dropout` with the layer's SeedGenerator.
    keras.utils.set_random_seed(0)
    layer = MaskedMultiHeadAttention(num_heads=2, key_dim=4, dropout=0.5)
    x = np.random.default_rng(0).normal(size=(2, 6, 8)).astype("float32")
    inference = keras.ops.convert_to_numpy(layer(x, x, training=False))
    first = keras.ops.convert_to_numpy(layer(x, x, training=True))
    second = keras.ops.convert_to_numpy(layer(x, x, training=True))
    assert np.all(np.isfinite(first))
    assert not np.allclose(first, inference)
    # The seed generator advances: two training calls draw two masks.
    assert not np.allclose(first, second)
    test_case.assert_allclose(layer(x, x, training=False), inference)


@pytest.mark.slow
def test_rm1_adrec_fit_one_epoch_then_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = RankingModel.from_preset(
        "rm1",
        vocabulary_sizes=VOCAB,
        num_dense=4,
        interaction="adrec",
        embedding_dim=8,
        bottom_units=[16],
        top_units=[16],
        ffn_dim=16,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy"
    )
    x, y = _batch(128)
    model(x)
    initial = [np.array(w) for w in model.get_weights()]
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    trained = model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in trained)
    assert any(not np.allclose(a, b) for a, b in zip(initial, trained))
    test_case.assert_keras_save_load(model, x, tmp_path, atol=1e-6)
