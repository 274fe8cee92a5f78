import itertools

import numpy as np
import pytest

from keras_adrec.training import binary_metrics
from keras_adrec.training import calibration
from keras_adrec.training import evaluate_model
from keras_adrec.training import group_auc
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


def test_calibration_by_hand_in_three_equal_mass_bins():
    labels = [1, 0, 0, 0, 1, 1]
    probs = [0.3, 0.2, 0.1, 0.6, 0.9, 0.7]
    # Sorted: (.1,0) (.2,0) | (.3,1) (.6,0) | (.7,1) (.9,1); gaps per bin
    # .15, .05 and .2, two rows each.
    result = calibration(labels, probs, num_bins=3)
    assert result["ece"] == pytest.approx((0.15 + 0.05 + 0.2) / 3)
    assert result["predicted_ctr"] == pytest.approx(2.8 / 6)
    assert result["observed_ctr"] == pytest.approx(0.5)


def test_calibration_bins_of_unequal_size_weigh_by_rows():
    # Seven rows in three bins: 3, 2 and 2 rows.
    labels = [0, 0, 1, 1, 0, 1, 1]
    probs = [0.1, 0.1, 0.1, 0.5, 0.5, 0.8, 0.8]
    gaps = [abs(0.1 - 1 / 3) * 3, abs(0.5 - 0.5) * 2, abs(0.8 - 1.0) * 2]
    result = calibration(labels, probs, num_bins=3)
    assert result["ece"] == pytest.approx(sum(gaps) / 7)


def test_ten_bins_of_one_row_give_the_mean_absolute_gap():
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 0])
    probs = np.array(
        [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
    )
    metrics = binary_metrics(labels, probs)
    assert metrics["calibration"]["ece"] == pytest.approx(
        np.mean(np.abs(probs - labels))
    )
    assert "gauc" not in metrics


def test_perfectly_calibrated_bins_have_zero_error():
    labels = [0, 1, 0, 1, 1, 1]
    probs = [0.5, 0.5, 0.5, 0.5, 1.0, 1.0]
    assert calibration(labels, probs, num_bins=3)["ece"] == pytest.approx(0)


def test_calibration_rejects_bad_input():
    with pytest.raises(ValueError, match="num_bins"):
        calibration([0, 1], [0.1, 0.2], num_bins=0)
    with pytest.raises(ValueError, match="differ in length"):
        calibration([0, 1], [0.1])
    assert np.isnan(calibration([], [])["ece"])


def test_group_auc_by_hand():
    # Group a: AUC 1 over 3 rows; b: AUC 0 over 2 rows; c (clicks only)
    # and d (no clicks) are left out.
    labels = [1, 0, 0, 1, 0, 1, 1, 0]
    scores = [0.9, 0.1, 0.5, 0.2, 0.8, 0.3, 0.4, 0.6]
    groups = ["a", "a", "a", "b", "b", "c", "c", "d"]
    assert group_auc(labels, scores, groups) == pytest.approx(3 / 5)
    metrics = binary_metrics(labels, scores, groups=groups)
    assert metrics["gauc"] == pytest.approx(3 / 5)


def test_group_auc_matches_pairwise_definition_per_group():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 1)
    groups = rng.integers(0, 7, 200)
    total = weight = 0.0
    for g in np.unique(groups):
        y, s = labels[groups == g], scores[groups == g]
        if 0 < y.sum() < y.size:
            total += y.size * _pairwise_auc(y, s)
            weight += y.size
    assert group_auc(labels, scores, groups) == pytest.approx(total / weight)


def test_group_auc_edges():
    assert np.isnan(group_auc([1, 0], [0.1, 0.2], ["a", "b"]))
    with pytest.raises(ValueError, match="differ in length"):
        group_auc([1, 0], [0.1, 0.2], ["a"])


class _Halves:
    """A stand-in model: predicts the first feature column."""

    def predict_on_batch(self, features):
        return np.asarray(features)[:, 0]


def test_evaluate_model_takes_groups_from_a_third_element():
    batches = [
        (np.array([[0.9], [0.1]]), np.array([1, 0]), np.array([7, 7])),
        (np.array([[0.2], [0.8]]), np.array([1, 0]), np.array([8, 8])),
    ]
    metrics = evaluate_model(_Halves(), batches)
    assert metrics["gauc"] == pytest.approx(0.5)
    assert metrics["auc"] == pytest.approx(0.75)  # 3 of 4 pairs
    assert set(metrics["calibration"]) == {
        "ece",
        "predicted_ctr",
        "observed_ctr",
    }
    plain = evaluate_model(_Halves(), [(b[0], b[1]) for b in batches])
    assert "gauc" not in plain
