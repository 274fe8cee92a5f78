"""Tests of the synthetic Criteo-shaped data with covariate shift."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.data.synthetic import SyntheticCriteo
from keras_adrec.data.zipf_sampler import ZipfSampler
from tests.samples import shared_data_file

# Criteo Kaggle per-column cardinalities as published with DLRM's
# preprocessing (facebookresearch/dlrm), copied here independently.
DLRM_KAGGLE_COUNTS = [
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683,
    8351593, 3194, 27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15,
    286181, 105, 142572,
]  # fmt: skip

# Missing rates of Criteo's first 10k rows (I1..I13, then C1..C26).
CRITEO_MISSING = [
    0.448, 0.0, 0.204, 0.198, 0.049, 0.251, 0.049, 0.001, 0.049, 0.448,
    0.049, 0.774, 0.198,
    0.0, 0.0, 0.036, 0.036, 0.0, 0.133, 0.0, 0.0, 0.0, 0.0, 0.0, 0.036, 0.0,
    0.0, 0.0, 0.036, 0.0, 0.0, 0.45, 0.45, 0.036, 0.818, 0.0, 0.036, 0.45,
    0.45,
]  # fmt: skip


def roc_auc(labels, scores):
    """AUC by the rank-sum formula, ties given their average rank."""
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, np.float64).reshape(-1)
    _, inverse, counts = np.unique(
        scores, return_inverse=True, return_counts=True
    )
    first = np.cumsum(counts) - counts
    ranks = (first + (counts + 1) / 2)[inverse]
    positive = labels == 1
    n_pos = positive.sum()
    n_neg = len(labels) - n_pos
    return (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_roc_auc_helper_on_hand_example():
    labels = [1, 0, 1, 0, 0]
    scores = [0.8, 0.3, 0.4, 0.5, 0.4]
    # Positive 0.8 beats the three negatives; positive 0.4 beats 0.3, ties
    # 0.4 (counts 1/2) and loses to 0.5: 4.5 of 6 pairs.
    assert roc_auc(labels, scores) == pytest.approx(4.5 / 6)


@pytest.fixture(scope="module")
def small():
    return SyntheticCriteo(
        rows_per_day=5000, num_days=3, seed=3, chunk_rows=1024
    )


@pytest.fixture(scope="module")
def day0():
    """120k rows of day 0 of the default generator."""
    generator = SyntheticCriteo(seed=0)
    return generator, generator.generate(0, 0, 120_000)


# ----------------------------------------------------------------------
# Determinism and streaming


def test_same_seed_same_rows_and_different_seed_differs(small):
    again = SyntheticCriteo(
        rows_per_day=5000, num_days=3, seed=3, chunk_rows=1024
    )
    a = small.generate(2, 100, 3000)
    b = again.generate(2, 100, 3000)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    other = SyntheticCriteo(
        rows_per_day=5000, num_days=3, seed=4, chunk_rows=1024
    ).generate(2, 100, 3000)
    assert np.mean(other["categorical"] != a["categorical"]) > 0.3
    assert not np.array_equal(other["label"], a["label"])


def test_rows_do_not_depend_on_ranges_or_rows_per_day(small):
    full = small.generate(1, 0, 5000)
    part = small.generate(1, 1500, 2600)  # crosses a chunk boundary
    for key in full:
        np.testing.assert_array_equal(part[key], full[key][1500:2600])
    shorter = SyntheticCriteo(
        rows_per_day=3000, num_days=3, seed=3, chunk_rows=1024
    ).generate(1)
    for key in full:
        np.testing.assert_array_equal(shorter[key], full[key][:3000])


def collect(dataset):
    dense, categorical, label, sizes = [], [], [], []
    for features, target in dataset:
        dense.append(features["dense"].numpy())
        categorical.append(features["categorical"].numpy())
        label.append(target.numpy())
        sizes.append(len(target))
    return (
        np.concatenate(dense),
        np.concatenate(categorical),
        np.concatenate(label),
        sizes,
    )


@pytest.mark.parametrize("batch_size", [100, 999])
def test_dataset_rows_independent_of_batch_size(small, batch_size):
    dataset = small.dataset(days=[0, 2], batch_size=batch_size)
    features_spec, label_spec = dataset.element_spec
    assert features_spec["dense"].shape.as_list() == [None, 13]
    assert features_spec["dense"].dtype == tf.float32
    assert features_spec["categorical"].shape.as_list() == [None, 26]
    assert features_spec["categorical"].dtype == tf.string
    assert label_spec.shape.as_list() == [None, 1]
    dense, categorical, label, sizes = collect(dataset)
    expected = [small.generate(0), small.generate(2)]
    np.testing.assert_array_equal(
        dense, np.concatenate([e["dense"] for e in expected])
    )
    np.testing.assert_array_equal(
        categorical, np.concatenate([e["categorical"] for e in expected])
    )
    np.testing.assert_array_equal(
        label, np.concatenate([e["label"] for e in expected])
    )
    # Batches run across chunk and day boundaries: all full but the last.
    assert sizes[:-1] == [batch_size] * (len(sizes) - 1)
    assert sum(sizes) == 10_000


def test_dataset_drop_remainder(small):
    _, _, label, sizes = collect(
        small.dataset(days=1, batch_size=999, drop_remainder=True)
    )
    assert sizes == [999] * 5
    np.testing.assert_array_equal(label, small.generate(1)["label"][:4995])


def test_config_round_trip_regenerates_rows(small):
    config = json.loads(json.dumps(small.get_config()))
    clone = SyntheticCriteo.from_config(config)
    assert clone.get_config() == small.get_config()
    np.testing.assert_array_equal(
        clone.generate(1)["categorical"], small.generate(1)["categorical"]
    )


# ----------------------------------------------------------------------
# Marginals


def test_cardinalities_follow_scaled_dlrm_counts(day0):
    generator, rows = day0
    expected = [max(min(c, 1000), round(c * 0.004)) for c in DLRM_KAGGLE_COUNTS]
    assert generator.cardinalities == expected
    assert max(expected) == 40525  # C3: 10,131,227 * 0.004
    ids = rows["ids"]
    assert ids.min() >= -1
    assert np.all(ids.max(axis=0) < np.array(expected))
    tiny = SyntheticCriteo(scale=1e-4, rows_per_day=1)
    assert tiny.cardinalities == [
        max(min(c, 1000), round(c * 1e-4)) for c in DLRM_KAGGLE_COUNTS
    ]


def test_tokens_are_hex_and_distinct_per_value(small):
    table, offsets = small._token_table()
    for column, size in enumerate(small.cardinalities):
        tokens = table[offsets[column] : offsets[column] + size]
        assert len(set(tokens.tolist())) == size
        assert tokens[0].decode().isalnum() and len(tokens[0]) == 8
        assert table[offsets[column] + size] == b""
    rows = small.generate(0, 0, 2000)
    hex8 = re.compile(rb"^[0-9a-f]{8}$")
    for token, value in zip(rows["categorical"].ravel(), rows["ids"].ravel()):
        assert (token == b"") == (value < 0)
        assert token == b"" or hex8.match(token)


def test_zipf_rank_frequency_slope_of_the_largest_column(day0):
    _, rows = day0
    ids = rows["ids"][:, 2]  # C3, 40,525 values
    counts = np.sort(np.bincount(ids[ids >= 0]))[::-1][:50]
    slope = np.polyfit(np.log(np.arange(1, 51)), np.log(counts), 1)[0]
    assert slope == pytest.approx(-1.05, abs=0.08)


@pytest.mark.parametrize("column", [8, 19, 16])  # C9 (3), C20 (4), C17 (10)
def test_small_column_frequencies_are_exact_zipf(day0, column):
    generator, rows = day0
    size = generator.cardinalities[column]
    ids = rows["ids"][:, column]
    ids = ids[ids >= 0]
    expected = np.arange(1, size + 1) ** -1.05
    expected /= expected.sum()
    observed = np.bincount(ids, minlength=size) / len(ids)
    sigma = np.sqrt(expected * (1 - expected) / len(ids))
    np.testing.assert_array_less(np.abs(observed - expected), 5 * sigma)


def test_zipf_sampler_equals_searchsorted():
    sizes = [1, 3, 64, 1000, 4097]
    exponents = [1.0, 0.5, 1.05, 1.3, 2.0]
    cdfs = []
    for size, exponent in zip(sizes, exponents):
        cdf = np.cumsum(np.arange(1, size + 1, dtype=np.float64) ** -exponent)
        cdfs.append(cdf / cdf[-1])
    uniforms = np.random.default_rng(0).random((5000, len(sizes)))
    uniforms[0] = 0.0
    uniforms[1] = np.nextafter(1.0, 0.0)
    for i, cdf in enumerate(cdfs):
        # Uniforms exactly at CDF steps: the edges of the guide table.
        edges = cdf[: min(len(cdf) - 1, 100)]
        uniforms[2 : 2 + len(edges), i] = edges
    values = ZipfSampler(sizes, exponents)(uniforms)
    assert values.dtype == np.int32
    for i, cdf in enumerate(cdfs):
        expected = np.searchsorted(cdf, uniforms[:, i], side="right")
        np.testing.assert_array_equal(values[:, i], expected)


def test_missing_rates_match_criteo(day0):
    _, rows = day0
    observed = np.concatenate(
        [np.isnan(rows["dense"]).mean(0), (rows["ids"] < 0).mean(0)]
    )
    np.testing.assert_allclose(observed, CRITEO_MISSING, atol=0.006)
    # Columns missing together in Criteo are missing on the same rows.
    np.testing.assert_array_equal(
        np.isnan(rows["dense"][:, 0]), np.isnan(rows["dense"][:, 9])
    )
    missing_c19 = rows["ids"][:, 18] < 0
    for column in (19, 24, 25):  # C20, C25, C26
        np.testing.assert_array_equal(missing_c19, rows["ids"][:, column] < 0)


def test_missing_rates_close_to_real_criteo_sample(day0):
    path = shared_data_file("criteo/train_head10k.txt")
    if path is None:
        pytest.skip("criteo/train_head10k.txt is not in the shared data dir")
    with open(path) as f:
        fields = [line.rstrip("\n").split("\t") for line in f]
    real = np.mean([[v == "" for v in row[1:]] for row in fields], axis=0)
    _, rows = day0
    observed = np.concatenate(
        [np.isnan(rows["dense"]).mean(0), (rows["ids"] < 0).mean(0)]
    )
    np.testing.assert_allclose(observed, real, atol=0.02)


def test_dense_counts_are_heavy_tailed_integers(day0):
    _, rows = day0
    dense = rows["dense"]
    present = dense[~np.isnan(dense[:, 4]), 4]  # I5: log-mean 7.33, sd 2.83
    np.testing.assert_array_equal(present, np.round(present))
    positive = present[present > 0]
    assert np.median(np.log(positive)) == pytest.approx(7.33, abs=0.1)
    assert np.mean(present == 0) == pytest.approx(0.017, abs=0.004)
    # Heavy tail: the 99.9th percentile is > 1000x the median.
    assert np.percentile(positive, 99.9) > 1000 * np.median(positive)
    i2 = dense[:, 1]
    assert np.mean(i2 < 0) == pytest.approx(0.098, abs=0.005)
    assert set(np.unique(i2[i2 < 0]).tolist()) == {-2.0, -1.0}


# ----------------------------------------------------------------------
# Labels and teacher


def test_click_rate_and_teacher_auc_near_targets(day0):
    generator, rows = day0
    label = rows["label"][:, 0]
    assert set(np.unique(label).tolist()) == {0.0, 1.0}
    assert label.mean() == pytest.approx(0.25, abs=0.01)
    assert roc_auc(label, rows["teacher_logit"]) == pytest.approx(
        0.80, abs=0.012
    )
    description = generator.describe()
    assert description["teacher"]["day0_expected_ctr"] == pytest.approx(0.25)
    assert description["teacher"]["day0_expected_auc"] == pytest.approx(
        0.80, abs=1e-3
    )


def test_click_rate_and_auc_are_configurable():
    generator = SyntheticCriteo(ctr=0.1, teacher_auc=0.7, noise=1.0, seed=9)
    rows = generator.generate(0, 0, 60_000)
    assert rows["label"].mean() == pytest.approx(0.1, abs=0.01)
    assert roc_auc(rows["label"], rows["teacher_logit"]) == pytest.approx(
        0.70, abs=0.015
    )


def test_teacher_has_second_and_third_order_crosses(day0):
    generator, _ = day0
    teacher = generator.describe()["teacher"]
    assert len(teacher["pairs"]) == 12 and len(teacher["triples"]) == 6
    assert all(len(set(p)) == 2 for p in teacher["pairs"])
    assert all(len(set(t)) == 3 for t in teacher["triples"])


# ----------------------------------------------------------------------
# Covariate shift

HASH_BUCKETS = 1 << 18


def hashed_features(rows):
    """Hashed (column, value) features: dense by log1p bucket, ids."""
    dense = rows["dense"]
    with np.errstate(invalid="ignore"):
        buckets = np.floor(np.log1p(np.maximum(dense, 0)) * 2) + 1
    buckets = np.where(np.isnan(dense), 0, buckets).astype(np.int64)
    values = np.concatenate([buckets, rows["ids"].astype(np.int64) + 1], 1)
    return (values * 1000003 + np.arange(values.shape[1]) * 7919) % (
        HASH_BUCKETS
    )


def fit_log_odds(features, label, prior=20.0):
    """A first-order model: smoothed log-odds of each hashed feature."""
    flat = features.ravel()
    clicks = np.bincount(
        flat, np.repeat(label, features.shape[1]), HASH_BUCKETS
    )
    counts = np.bincount(flat, minlength=HASH_BUCKETS)
    ctr = label.mean()
    rate = (clicks + prior * ctr) / (counts + prior)
    return np.log(rate / (1 - rate))


def auc_drop(shift_strength, rows=80_000, seed=3):
    """AUC on day 0 (held out) minus AUC on day 6, trained on day 0."""
    generator = SyntheticCriteo(seed=seed, shift_strength=shift_strength)
    train = generator.generate(0, 0, rows)
    weights = fit_log_odds(hashed_features(train), train["label"][:, 0])

    def auc(data):
        scores = weights[hashed_features(data)].sum(1)
        return roc_auc(data["label"], scores)

    return auc(generator.generate(0, rows, 2 * rows)) - auc(
        generator.generate(6, 0, rows)
    )


def test_model_trained_on_day0_loses_auc_later_only_with_shift():
    assert abs(auc_drop(0.0)) < 0.015
    assert auc_drop(4.0) > 0.025


def test_shift_moves_marginals_and_cross_weights():
    for strength in (0.0, 1.0):
        generator = SyntheticCriteo(shift_strength=strength, seed=1)
        params0 = generator._day_params(0)
        params3 = generator._day_params(3)
        moved = not np.allclose(
            params0["pair_weights"], params3["pair_weights"]
        )
        assert moved == (strength > 0)

        # Share of C3 draws among its 100 most popular values of day 0
        # (ids 0..99: day 0 has no permutation).
        def head_share(day):
            ids = generator.generate(day, 0, 20_000)["ids"][:, 2]
            return np.mean((ids >= 0) & (ids < 100)) / np.mean(ids >= 0)

        change = head_share(0) - head_share(3)
        if strength == 0:
            assert abs(change) < 0.02
        else:
            assert change > 0.05


# ----------------------------------------------------------------------
# Files and metadata


def test_written_tsv_is_criteo_format_and_says_synthetic(small, tmp_path):
    paths = small.write_tsv(str(tmp_path), days=[0, 1])
    assert [os.path.basename(p) for p in paths] == [
        "synthetic_day_0.tsv",
        "synthetic_day_1.tsv",
    ]
    count = re.compile(r"^(-?[0-9]+)?$")
    token = re.compile(r"^([0-9a-f]{8})?$")
    for day, path in enumerate(paths):
        with open(path) as f:
            lines = f.read().split("\n")
        assert lines[-1] == ""  # newline-terminated
        lines = lines[:-1]
        assert len(lines) == small.rows_per_day
        expected = small.generate(day)
        for index in (0, 1, 777, 4999):
            fields = lines[index].split("\t")
            assert len(fields) == 40
            assert fields[0] in ("0", "1")
            assert float(fields[0]) == expected["label"][index, 0]
            for j, text in enumerate(fields[1:14]):
                assert count.match(text), text
                value = expected["dense"][index, j]
                if text == "":
                    assert np.isnan(value)
                else:
                    assert int(text) == value
            for j, text in enumerate(fields[14:]):
                assert token.match(text), text
                assert text.encode() == expected["categorical"][index, j]
    with open(tmp_path / "metadata.json") as f:
        metadata = json.load(f)
    assert metadata["synthetic"] is True
    assert metadata["files"] == {
        "synthetic_day_0.tsv": "tsv",
        "synthetic_day_1.tsv": "tsv",
    }
    assert metadata["config"] == small.get_config()
    with open(tmp_path / "README.md") as f:
        assert "SYNTHETIC" in f.read()


def test_describe_says_synthetic_and_is_json(small):
    description = json.loads(json.dumps(small.describe()))
    assert description["synthetic"] is True
    assert "synthetic" in description["description"].lower()
    assert description["config"]["seed"] == 3
    assert description["cardinalities"] == small.cardinalities


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"ctr": 1.5}, "ctr"),
        ({"teacher_auc": 0.4}, "teacher_auc"),
        ({"rows_per_day": 0}, "rows_per_day"),
        ({"shift_strength": -1}, "shift_strength"),
        ({"noise": -0.1}, "noise"),
        ({"scale": 0}, "scale"),
        ({"cardinalities": [5] * 3}, "cardinalities"),
        ({"zipf_exponent": 0.0}, "zipf_exponent"),
        ({"order_weights": (0, 0, 0)}, "order_weights"),
        ({"chunk_rows": 1.5}, "chunk_rows"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        SyntheticCriteo(**kwargs)
