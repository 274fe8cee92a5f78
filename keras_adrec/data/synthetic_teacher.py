"""The hidden teacher that labels `SyntheticCriteo` rows.

A logit of first-order terms, pairwise and three-way products of
per-value embeddings and Gaussian noise, with a bias and scale calibrated
on day 0 to the requested click rate and AUC.
"""

import math

import numpy as np

from keras_adrec.data.schema import CRITEO_SCHEMA
from keras_adrec.data.synthetic_profile import _CALIBRATION
from keras_adrec.data.synthetic_profile import _CALIBRATION_ROWS
from keras_adrec.data.synthetic_profile import _DENSE_BUCKETS
from keras_adrec.data.synthetic_profile import _MIN_CROSS_CARDINALITY
from keras_adrec.data.synthetic_profile import _STREAMS
from keras_adrec.data.synthetic_profile import _TEACHER


class ClickTeacher:
    """`SyntheticCriteo`'s teacher: tables, calibration, labels (a mixin)."""

    def _build_teacher(self):
        """Random tables, active crosses and weights of the hidden teacher."""
        rng = self._rng(_TEACHER)
        num_dense = CRITEO_SCHEMA.num_dense
        # Every field's table has one extra last slot for "missing".
        sizes = [_DENSE_BUCKETS] * num_dense + [
            c + 1 for c in self.cardinalities
        ]
        self._field_sizes = np.array(sizes)
        self._field_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        total = int(np.sum(sizes))
        first = rng.standard_normal(total).astype(np.float32)
        embeddings = rng.standard_normal((total, self.teacher_dim)).astype(
            np.float32
        )
        # Dense fields: smooth functions of the bucket (random walks), so
        # that nearby counts act alike; bucket 0 (missing) stays random.
        for f in range(num_dense):
            lo = self._field_offsets[f]
            walk = slice(lo + 1, lo + _DENSE_BUCKETS)
            first[walk] = np.cumsum(first[walk]) / 4.0
            embeddings[walk] = np.cumsum(embeddings[walk], axis=0) / 4.0
        self._first_order = first
        self._embeddings = embeddings

        eligible = [
            f
            for f, size in enumerate(sizes)
            if size - 1 >= _MIN_CROSS_CARDINALITY
        ]
        self._pairs = _distinct_combinations(rng, eligible, 2, self.num_pairs)
        self._triples = _distinct_combinations(
            rng, eligible, 3, self.num_triples
        )
        self._pair_weights0 = rng.standard_normal(len(self._pairs))
        self._triple_weights0 = rng.standard_normal(len(self._triples))
        active = sorted(
            {f for cross in self._pairs + self._triples for f in cross}
        )
        self._active_fields = np.array(active, dtype=np.int64)
        position = {f: i for i, f in enumerate(active)}
        self._pair_index = np.array(
            [[position[f] for f in p] for p in self._pairs], dtype=np.int64
        ).reshape(-1, 2)
        self._triple_index = np.array(
            [[position[f] for f in t] for t in self._triples], dtype=np.int64
        ).reshape(-1, 3)

    def _calibrate(self):
        """Center the tables, standardize the terms, fit bias and scale."""
        sample_rng = {
            name: self._rng(_CALIBRATION, i) for i, name in enumerate(_STREAMS)
        }
        params = self._day_params(0)
        dense, ids = self._sample_features(
            sample_rng, params, _CALIBRATION_ROWS
        )
        flat = self._flat_ids(dense, ids)
        # Center each active field's embeddings on its day-0 mean, so that a
        # cross has no first-order part left (a true interaction).
        for f in self._active_fields:
            column = flat[:, f]
            mean = self._embeddings[column].mean(axis=0)
            lo = self._field_offsets[f]
            self._embeddings[lo : lo + self._field_sizes[f]] -= mean
        self._normalizers = None
        first, pairs, triples = self._raw_terms(flat)
        self._pair_scale = pairs.std(axis=0) + 1e-12
        self._triple_scale = triples.std(axis=0) + 1e-12
        orders = self._combine_orders(first, pairs, triples, params)
        self._normalizers = [(o.mean(), o.std() + 1e-12) for o in orders]
        signal = self._signal(first, pairs, triples, params)
        self._signal_mean = float(signal.mean())
        self._signal_std = float(signal.std() + 1e-12)
        signal = (signal - self._signal_mean) / self._signal_std
        bias, scale, ctr, auc = _calibrate_logit(
            signal.astype(np.float64), self.ctr, self.teacher_auc, self.noise
        )
        self._bias = bias
        self._signal_scale = scale
        self._calibrated_ctr = ctr
        self._calibrated_auc = auc

    def _flat_ids(self, dense, ids):
        """Indices of every field's value in the flat teacher tables."""
        with np.errstate(invalid="ignore"):
            bucket = np.log1p(np.maximum(dense, 0))
        bucket *= 2
        np.minimum(bucket, _DENSE_BUCKETS - 2, out=bucket)
        bucket += 1
        np.copyto(bucket, np.float32(0), where=np.isnan(dense))
        flat = np.empty((len(ids), len(self._field_offsets)), np.int64)
        flat[:, : bucket.shape[1]] = bucket
        flat[:, bucket.shape[1] :] = ids
        flat += self._field_offsets
        return flat

    def _raw_terms(self, flat):
        """First-order sum `[n]`, pair products `[n, P]`, triples `[n, T]`."""
        first = self._first_order[flat].sum(axis=1)
        # [fields, n, dim]: each active field's embeddings, contiguous.
        vectors = self._embeddings[flat[:, self._active_fields].T]
        pairs = np.zeros((len(flat), len(self._pairs)), np.float32)
        for p, (a, b) in enumerate(self._pair_index):
            pairs[:, p] = np.einsum("nd,nd->n", vectors[a], vectors[b])
        triples = np.zeros((len(flat), len(self._triples)), np.float32)
        for t, (a, b, c) in enumerate(self._triple_index):
            triples[:, t] = np.einsum(
                "nd,nd,nd->n", vectors[a], vectors[b], vectors[c]
            )
        return first, pairs, triples

    def _combine_orders(self, first, pairs, triples, params):
        second = pairs @ (params["pair_weights"] / self._pair_scale)
        third = triples @ (params["triple_weights"] / self._triple_scale)
        return [first, second, third]

    def _signal(self, first, pairs, triples, params):
        orders = self._combine_orders(first, pairs, triples, params)
        signal = np.zeros_like(first)
        for order, (mean, std), share in zip(
            orders, self._normalizers, self.order_weights
        ):
            signal += math.sqrt(share) * (order - mean) / std
        return signal

    def _label(self, rngs, dense, ids, params):
        first, pairs, triples = self._raw_terms(self._flat_ids(dense, ids))
        signal = self._signal(first, pairs, triples, params)
        signal = (signal - self._signal_mean) / self._signal_std
        logit = self._bias + self._signal_scale * signal
        n = len(logit)
        noise = rngs["noise"].standard_normal(n, np.float32)
        probability = 1 / (1 + np.exp(-(logit + self.noise * noise)))
        label = rngs["label"].random(n, np.float32) < probability
        return logit, label.astype(np.float32)


def _distinct_combinations(rng, fields, order, count):
    """`count` distinct sorted tuples of `order` distinct fields."""
    if count == 0:
        return []
    if len(fields) < order:
        raise ValueError(
            f"Need at least {order} fields with >= {_MIN_CROSS_CARDINALITY} "
            f"values for order-{order} crosses; got {len(fields)}."
        )
    possible = math.comb(len(fields), order)
    if count > possible:
        raise ValueError(
            f"Asked for {count} crosses of order {order} but only "
            f"{possible} exist."
        )
    chosen = []
    while len(chosen) < count:
        cross = tuple(sorted(rng.choice(fields, order, replace=False).tolist()))
        if cross not in chosen:
            chosen.append(cross)
    return chosen


def _expected_auc(probability):
    """Expected AUC of a score sorted ascending, with these click chances.

    `probability[i]` is the chance that row `i` (rows in ascending score
    order, no ties) is a click: a pair (click i, non-click j) is ranked
    right when j < i.
    """
    negatives_below = np.cumsum(1 - probability) - (1 - probability)
    positives = probability.sum()
    negatives = len(probability) - positives
    return float(
        np.sum(probability * negatives_below) / (positives * negatives)
    )


def _calibrate_logit(signal, ctr, auc, noise):
    """Bias and scale of the logit `bias + scale * signal + noise * z`.

    The mean click probability over `signal` (and over the Gaussian noise
    `z`, by Gauss-Hermite quadrature) is `ctr`, and the expected AUC of
    `signal` against the labels drawn from it is `auc`. The bias is solved
    by Newton's method for each scale; the scale by bisection (the AUC
    grows with it).

    Returns:
        `(bias, scale, reached_ctr, reached_auc)`.
    """
    signal = np.sort(signal)
    nodes, weights = np.polynomial.hermite_e.hermegauss(8)
    weights = weights / weights.sum()
    noise_values = noise * nodes[None, :]
    bias = [math.log(ctr / (1 - ctr))]

    def probability(scale):
        """Mean click probability per row and bias meeting `ctr`."""
        for _ in range(50):
            logits = bias[0] + scale * signal[:, None] + noise_values
            p = 1 / (1 + np.exp(-logits))
            mean = float((p @ weights).mean())
            if abs(mean - ctr) < 1e-9:
                break
            slope = float(((p * (1 - p)) @ weights).mean())
            bias[0] -= (mean - ctr) / slope
        logits = bias[0] + scale * signal[:, None] + noise_values
        return (1 / (1 + np.exp(-logits))) @ weights

    def reached_auc(scale):
        return _expected_auc(probability(scale))

    lo, hi = 0.0, 1.0
    while reached_auc(hi) < auc:
        lo, hi = hi, hi * 2
        if hi > 1e4:
            raise ValueError(f"Cannot reach teacher_auc={auc}.")
    while hi - lo > 1e-4 * hi:
        mid = (lo + hi) / 2
        if reached_auc(mid) < auc:
            lo = mid
        else:
            hi = mid
    scale = (lo + hi) / 2
    p = probability(scale)
    return bias[0], scale, float(p.mean()), _expected_auc(p)
