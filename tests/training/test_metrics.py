import itertools

import numpy as np
import pytest

from keras_adrec.training import binary_metrics
from keras_adrec.training import log_loss
from keras_adrec.training import roc_auc


def _pairwise_auc(labels, scores):
    # Independent reference: the probability that a random positive scores
    # above a random negative, ties counting one half.
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    total = 0.0
    for p, n in itertools.product(pos, neg):
        total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300), 1)  # many ties
    assert roc_auc(labels, scores) == pytest.approx(
        _pairwise_auc(labels, scores), abs=1e-12
    )


def test_auc_edges():
    assert roc_auc([0, 1], [0.1, 0.9]) == 1.0
    assert roc_auc([0, 1], [0.9, 0.1]) == 0.0
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))
    with pytest.raises(ValueError, match="differ in length"):
        roc_auc([0, 1], [0.1])


def test_logloss_and_accuracy():
    labels = np.array([1, 0, 1, 0])
    probs = np.array([0.9, 0.2, 0.4, 0.6])
    expected = -np.mean(np.log([0.9, 0.8, 0.4, 0.4]))
    assert log_loss(labels, probs) == pytest.approx(expected)
    metrics = binary_metrics(labels, probs)
    assert metrics["accuracy"] == 0.5
    assert metrics["examples"] == 4
    assert metrics["prediction_spread"] == pytest.approx(0.7)
    assert metrics["constant_predictions"] is False


def test_constant_predictions_are_flagged():
    metrics = binary_metrics([1, 0, 1, 0], np.full(4, 0.25, "float32"))
    assert metrics["auc"] == 0.5
    assert metrics["constant_predictions"] is True
