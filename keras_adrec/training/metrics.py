"""Exact validation metrics computed from predictions (numpy).

Keras' streaming `AUC` metric approximates with a fixed set of thresholds;
the numbers this project reports (and compares to the paper) are exact.
The calibration error over equal-mass bins and the per-group AUC (GAUC)
need every prediction at once (a sort, a grouping), which a streaming
`keras.metrics.Metric` cannot hold exactly, so they are numpy as well.
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


# Equal-mass bins of the expected calibration error.
CALIBRATION_BINS = 10


def calibration(labels, probabilities, num_bins=CALIBRATION_BINS):
    """Predicted vs observed click rate, overall and in equal-mass bins.

    The rows are sorted by probability (ties in input order) and cut into
    `num_bins` bins of equal size (sizes differ by at most one row); the
    expected calibration error is the row-weighted mean, over the bins, of
    |mean probability - mean label|.

    Args:
        labels: array of 0/1.
        probabilities: array of predicted probabilities, same length.
        num_bins: int > 0. Bins of the calibration error. Defaults to
            `10`.

    Returns:
        dict with `ece`, `predicted_ctr` (mean probability) and
        `observed_ctr` (mean label); all `nan` when there are no rows.
    """
    if num_bins < 1:
        raise ValueError(
            f"`num_bins` must be positive. Received: num_bins={num_bins}"
        )
    labels = np.asarray(labels, dtype="float64").reshape(-1)
    probabilities = np.asarray(probabilities, dtype="float64").reshape(-1)
    if labels.shape != probabilities.shape:
        raise ValueError(
            f"`labels` and `probabilities` differ in length: "
            f"{labels.shape[0]} vs {probabilities.shape[0]}"
        )
    if not labels.size:
        nan = float("nan")
        return {"ece": nan, "predicted_ctr": nan, "observed_ctr": nan}
    order = np.argsort(probabilities, kind="stable")
    error = 0.0
    for rows in np.array_split(order, min(num_bins, labels.size)):
        gap = probabilities[rows].mean() - labels[rows].mean()
        error += rows.size * abs(gap)
    return {
        "ece": float(error / labels.size),
        "predicted_ctr": float(probabilities.mean()),
        "observed_ctr": float(labels.mean()),
    }


def group_auc(labels, scores, groups):
    """Impression-weighted mean of the AUC within each group (GAUC).

    Only groups holding both labels count; each weighs by its rows.

    Args:
        labels: array of 0/1.
        scores: array of predicted scores, same length.
        groups: array of group keys (a user id, say), same length.

    Returns:
        float GAUC, or `nan` when no group holds both labels.
    """
    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, dtype="float64").reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    if not labels.shape == scores.shape == groups.shape:
        raise ValueError(
            f"`labels`, `scores` and `groups` differ in length: "
            f"{labels.shape[0]}, {scores.shape[0]} and {groups.shape[0]}"
        )
    _, group_index = np.unique(groups, return_inverse=True)
    order = np.argsort(group_index, kind="stable")
    bounds = np.flatnonzero(np.diff(group_index[order])) + 1
    weighted = 0.0
    weight = 0
    for rows in np.split(order, bounds):
        positives = int(labels[rows].sum())
        if 0 < positives < rows.size:
            weighted += rows.size * roc_auc(labels[rows], scores[rows])
            weight += rows.size
    return float(weighted / weight) if weight else float("nan")


def binary_metrics(labels, probabilities, groups=None):
    """AUC, logloss and accuracy (threshold 0.5) as a dict of floats.

    Also `prediction_spread` (max - min probability) and
    `constant_predictions`: True when every prediction is the same value
    (spread below `CONSTANT_SPREAD`), which a saturated or untrained model
    gives and which an AUC of 0.5 alone does not reveal; `calibration`
    (see `calibration`); and `gauc` (see `group_auc`) when `groups` is
    given.
    """
    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities).reshape(-1)
    spread = float(np.ptp(probabilities)) if probabilities.size else 0.0
    metrics = {
        "auc": roc_auc(labels, probabilities),
        "logloss": log_loss(labels, probabilities),
        "accuracy": float(np.mean((probabilities > 0.5) == (labels > 0.5))),
        "examples": int(labels.size),
        "prediction_spread": spread,
        "constant_predictions": bool(spread < CONSTANT_SPREAD),
        "calibration": calibration(labels, probabilities),
    }
    if groups is not None:
        metrics["gauc"] = group_auc(labels, probabilities, groups)
    return metrics


def predict_with_labels(model, dataset, with_groups=False):
    """Run `model` over a dataset of `(features, label)` batches.

    Args:
        model: a Keras model.
        dataset: iterable of `(features, label)` or, for GAUC,
            `(features, label, group)` batches.
        with_groups: bool. Also return the groups (the third element of
            each batch; None when the batches have none).

    Returns:
        `(labels, probabilities)` as flat numpy arrays, and `groups` after
        them when `with_groups`.
    """
    labels = []
    probabilities = []
    groups = []
    for batch in dataset:
        features, label = batch[0], batch[1]
        if len(batch) > 2:
            groups.append(np.asarray(batch[2]).reshape(-1))
        labels.append(np.asarray(label).reshape(-1))
        probabilities.append(
            np.asarray(model.predict_on_batch(features)).reshape(-1)
        )
    if not labels:
        raise ValueError("The evaluation data is empty.")
    result = (np.concatenate(labels), np.concatenate(probabilities))
    if with_groups:
        result += (np.concatenate(groups) if groups else None,)
    return result


def evaluate_model(model, dataset):
    """`binary_metrics` of `model` on a dataset of `(features, label)`.

    Batches of `(features, label, group)` add the `gauc`.
    """
    labels, probabilities, groups = predict_with_labels(
        model, dataset, with_groups=True
    )
    return binary_metrics(labels, probabilities, groups=groups)
