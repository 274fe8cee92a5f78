"""Exact validation metrics computed from predictions (numpy).

Keras' streaming `AUC` metric approximates with a fixed set of thresholds;
the numbers this project reports (and compares to the paper) are exact.
"""

import numpy as np


def roc_auc(labels, scores):
    """Exact area under the ROC curve (Mann-Whitney U with tied mid-ranks).

    Args:
        labels: array of 0/1.
        scores: array of predicted scores, same length.

    Returns:
        float AUC, or `nan` when only one class is present.
    """
    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, dtype="float64").reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(
            f"`labels` and `scores` differ in length: {labels.shape[0]} vs "
            f"{scores.shape[0]}"
        )
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Mid-ranks for ties: every member of a tie group gets the group's mean.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], scores.size]
    mid = (starts + ends + 1) / 2.0
    ranks = np.empty(scores.size)
    ranks[order] = np.repeat(mid, ends - starts)
    rank_sum = ranks[labels].sum()
    return float(
        (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
    )


def log_loss(labels, probabilities, epsilon=1e-7):
    """Mean binary cross-entropy, probabilities clipped to [eps, 1 - eps]."""
    labels = np.asarray(labels, dtype="float64").reshape(-1)
    p = np.clip(
        np.asarray(probabilities, dtype="float64").reshape(-1),
        epsilon,
        1.0 - epsilon,
    )
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


# Predictions whose spread is below this are one constant value: a
# saturated or untrained model (float32 resolution near 0.5 is 6e-8).
CONSTANT_SPREAD = 1e-6


def binary_metrics(labels, probabilities):
    """AUC, logloss and accuracy (threshold 0.5) as a dict of floats.

    Also `prediction_spread` (max - min probability) and
    `constant_predictions`: True when every prediction is the same value
    (spread below `CONSTANT_SPREAD`), which a saturated or untrained model
    gives and which an AUC of 0.5 alone does not reveal.
    """
    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities).reshape(-1)
    spread = float(np.ptp(probabilities)) if probabilities.size else 0.0
    return {
        "auc": roc_auc(labels, probabilities),
        "logloss": log_loss(labels, probabilities),
        "accuracy": float(np.mean((probabilities > 0.5) == (labels > 0.5))),
        "examples": int(labels.size),
        "prediction_spread": spread,
        "constant_predictions": bool(spread < CONSTANT_SPREAD),
    }


def predict_with_labels(model, dataset):
    """Run `model` over a dataset of `(features, label)` batches.

    Returns:
        `(labels, probabilities)` as flat numpy arrays.
    """
    labels = []
    probabilities = []
    for features, label in dataset:
        labels.append(np.asarray(label).reshape(-1))
        probabilities.append(
            np.asarray(model.predict_on_batch(features)).reshape(-1)
        )
    if not labels:
        raise ValueError("The evaluation data is empty.")
    return np.concatenate(labels), np.concatenate(probabilities)


def evaluate_model(model, dataset):
    """`binary_metrics` of `model` on a dataset of `(features, label)`."""
    labels, probabilities = predict_with_labels(model, dataset)
    return binary_metrics(labels, probabilities)
