"""The sequential HyperModel: RM4-RM7 defaults, a search on tiny data."""

import keras_tuner as kt
import numpy as np
import pytest

from keras_adrec.models import get_preset
from keras_adrec.models.sequential_ranking_model import SequentialRankingModel
from keras_adrec.tuning import HYPERPARAMETERS
from keras_adrec.tuning import SequentialHyperModel
from keras_adrec.tuning import search


def _points(n, length, vocabulary, seed):
    """Random Taobao-shaped points: 3 ids and 1 time feature per event."""
    rng = np.random.default_rng(seed)
    features = {
        "sparse": rng.integers(0, vocabulary, (n, length, 3)).astype("int32"),
        "dense": rng.random((n, length, 1)).astype("float32"),
    }
    # Clicks depend on the candidate item id, so there is something to
    # learn.
    labels = (features["sparse"][:, -1, 1] % 2).astype("float32")
    return features, labels.reshape(-1, 1)


@pytest.mark.parametrize("preset", ["rm4", "rm5", "rm6", "rm7"])
def test_defaults_are_the_preset(preset):
    hypermodel = SequentialHyperModel(preset, vocabulary_sizes=[10, 10, 10])
    hp = kt.HyperParameters()
    fields = hypermodel.trial_fields(hp)
    expected = get_preset(preset)
    assert set(hp.values) == set(HYPERPARAMETERS)
    for name in HYPERPARAMETERS:
        assert getattr(fields, name) == getattr(expected, name), name
    assert fields.sequence_layer == expected.sequence_layer


def test_default_build_matches_the_preset_model():
    hypermodel = SequentialHyperModel("rm4", vocabulary_sizes=[10, 10, 10])
    model = hypermodel.build(kt.HyperParameters())
    reference = SequentialRankingModel.from_preset(
        "rm4", vocabulary_sizes=[10, 10, 10]
    )
    assert model.interaction.get_config() == reference.interaction.get_config()
    assert type(model.sequence_layer) is type(reference.sequence_layer)
    assert model.optimizer.__class__.__name__.lower() == "adagrad"


def test_rejects_ranking_presets():
    with pytest.raises(ValueError, match="not a sequential preset"):
        SequentialHyperModel("rm1", vocabulary_sizes=[10, 10, 10])
    with pytest.raises(ValueError, match="vocabulary_sizes"):
        SequentialHyperModel("rm4", vocabulary_sizes=None)


@pytest.mark.slow
def test_sequential_search(tmp_path):
    train = _points(256, 4, 20, seed=0)
    val = _points(128, 4, 20, seed=1)
    hypermodel = SequentialHyperModel(
        "rm4",
        vocabulary_sizes=[20, 20, 20],
        overrides={"batch_size": 128},
        fixed={"num_layers": 1, "ffn_dim": 64},
        ranges={"num_heads": [1, 2, 4]},
        run_eagerly=True,
    )
    tuner = search.run_search(
        hypermodel, train, val, tmp_path, max_trials=1, epochs=1
    )
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "COMPLETED", trial.message
    assert trial.hyperparameters.values["num_heads"] in (1, 2, 4)
    (model,) = tuner.get_best_models(1)
    assert model.predict(val[0], verbose=0).shape == (128, 1)
