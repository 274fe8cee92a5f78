"""MovieLens `.inter` as a click task: reader, time order, label rule,
shift split."""

import numpy as np
import pytest

from keras_adrec.data import DataFormatError
from keras_adrec.data import data_kind
from keras_adrec.data import make_dataset
from keras_adrec.data.movielens import MOVIELENS_HEADER
from keras_adrec.data.movielens import MOVIELENS_SCHEMA
from keras_adrec.data.movielens import movielens_dataset
from keras_adrec.data.movielens import read_movielens
from keras_adrec.data.shift_splits import positional_shift_split
from keras_adrec.data.shift_splits import read_raw
from tests.samples import shared_data_file

HEADER = "\t".join(MOVIELENS_HEADER)
# 2001-09-09 01:46:40 UTC (a Sunday) is 1,000,000,000.
BASE = 1_000_000_000


def write_inter(path, rows, header=HEADER):
    """Rows `(user, item, rating, timestamp)` in the given (file) order."""
    lines = [header] + ["\t".join(str(x) for x in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def shuffled_rows(num=50, seed=0):
    """Rows whose file order is not their time order; item k has
    timestamp BASE + 3600 * k and rating k % 5 + 1."""
    rows = [
        (f"u{k % 7}", f"i{k}", k % 5 + 1, BASE + 3600 * k) for k in range(num)
    ]
    order = np.random.default_rng(seed).permutation(num)
    return [rows[k] for k in order]


def all_rows(dataset):
    features, labels = read_raw(dataset)
    return features, labels


def test_read_orders_rows_by_timestamp(tmp_path):
    path = write_inter(tmp_path / "r.inter", shuffled_rows())
    rows = read_movielens(path)
    assert np.all(np.diff(rows["timestamp"]) >= 0)
    assert list(rows["item_id"][:3]) == ["i0", "i1", "i2"]


def test_ties_keep_file_order(tmp_path):
    rows = [
        ("a", "x", 5, BASE + 10),
        ("b", "y", 1, BASE),
        ("c", "z", 4, BASE + 10),
    ]
    rows = read_movielens(write_inter(tmp_path / "r.inter", rows))
    assert list(rows["user_id"]) == ["b", "a", "c"]


def test_label_is_rating_at_least_four(tmp_path):
    ratings = (1, 2, 3, 3.5, 4, 4.5, 5)
    rows = [("u", f"i{k}", r, BASE + k) for k, r in enumerate(ratings)]
    path = write_inter(tmp_path / "r.inter", rows)
    _, labels = all_rows(movielens_dataset(path, 4))
    assert labels[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_dense_features_are_hour_and_weekday_utc(tmp_path):
    # BASE is Sunday 01:46 UTC; one day and 5 hours later: Monday 06:46.
    rows = [("u", "a", 4, BASE), ("u", "b", 4, BASE + 86_400 + 5 * 3600)]
    path = write_inter(tmp_path / "r.inter", rows)
    features, _ = all_rows(movielens_dataset(path, 4))
    assert features["dense"].tolist() == [[1.0, 6.0], [6.0, 0.0]]
    assert features["categorical"].tolist() == [[b"u", b"a"], [b"u", b"b"]]


def test_time_split_puts_the_latest_rows_in_validation(tmp_path):
    path = write_inter(tmp_path / "r.inter", shuffled_rows(50))
    train, _ = all_rows(movielens_dataset(path, 8, split="train"))
    val, _ = all_rows(movielens_dataset(path, 8, split="val"))
    train_items = {int(t[1:]) for t in train["categorical"][:, 1].astype(str)}
    val_items = {int(t[1:]) for t in val["categorical"][:, 1].astype(str)}
    # Item k was rated at hour k: training holds exactly the earliest 40.
    assert train_items == set(range(40)) and val_items == set(range(40, 50))


def test_random_split_is_seeded_disjoint_and_complete(tmp_path):
    path = write_inter(tmp_path / "r.inter", shuffled_rows(200))
    split = {"split_mode": "random", "seed": 3}
    train, _ = all_rows(movielens_dataset(path, 64, split="train", **split))
    val, _ = all_rows(movielens_dataset(path, 64, split="val", **split))
    again, _ = all_rows(movielens_dataset(path, 64, split="val", **split))
    items = lambda f: set(f["categorical"][:, 1].astype(str))  # noqa: E731
    assert items(val) == items(again)
    assert not items(train) & items(val)
    assert len(items(train) | items(val)) == 200


def test_registered_as_a_ranking_kind(tmp_path):
    path = write_inter(tmp_path / "r.inter", shuffled_rows(10))
    assert data_kind("movielens", task="ranking").schema is MOVIELENS_SCHEMA
    _, labels = all_rows(make_dataset("movielens", [path], 4))
    assert len(labels) == 10


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "user\titem\trating\ttimestamp\nu\ti\t4\t1\n",
            "line 1: expected the header",
        ),
        (
            HEADER + "\nu\ti\t4\n",
            "line 2: expected 4 TAB-separated fields, found 3",
        ),
        (
            HEADER + "\nu\ti\tfour\t1\n",
            "line 2, column rating: expected a finite number",
        ),
        (
            HEADER + "\nu\ti\t4\t1\n\ti\t4\t1\n",
            "line 3, column user_id: expected an id",
        ),
        (
            HEADER + "\nu\ti\t4\t1.5\n",
            "line 2, column timestamp: expected whole seconds",
        ),
        (
            HEADER + "\nu\ti\tnan\t1\n",
            "line 2, column rating: expected a finite",
        ),
    ],
)
def test_malformed_input_names_file_line_and_column(tmp_path, text, expected):
    path = tmp_path / "bad.inter"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=expected) as info:
        read_movielens(str(path))
    assert str(path) in str(info.value)


def test_no_rows_and_skip_policy_are_refused(tmp_path):
    path = write_inter(tmp_path / "empty.inter", [])
    with pytest.raises(ValueError, match="No MovieLens rows"):
        read_movielens(path)
    path = write_inter(tmp_path / "r.inter", shuffled_rows(5))
    with pytest.raises(ValueError, match="on_bad_lines"):
        movielens_dataset(path, 4, on_bad_lines="skip")


def test_shift_split_keeps_later_rows_out_of_training(tmp_path):
    path = write_inter(tmp_path / "r.inter", shuffled_rows(100))
    split = positional_shift_split("movielens", path, seed=1)
    stats = split.stats()
    assert [stats[p]["rows"] for p in ("train", "same", "later")] == [
        stats["train"]["rows"],
        80 - stats["train"]["rows"],
        20,
    ]
    assert 0 < stats["same"]["rows"] < 80
    # Items 80-99 (the latest hours) were never seen in training: every
    # later item maps to the OOV id 0, no training item does.
    train_items = split.train[0]["sparse"][:, 1]
    later_items = split.later[0]["sparse"][:, 1]
    assert np.all(later_items == 0) and np.all(train_items > 0)
    assert split.preprocessor.vocabulary_sizes[1] == stats["train"]["rows"] + 1
    # Same-period rows are drawn from the training period: their items
    # (hours 0-79) are not in training, so they are OOV too, but their
    # users are known.
    assert np.all(split.same[0]["sparse"][:, 0] > 0)


@pytest.mark.skipif(
    shared_data_file("movielens/ml-100k.inter") is None,
    reason="research-only sample movielens/ml-100k.inter not found "
    "(set ADREC_DATA_DIR)",
)
def test_real_sample_time_split():
    path = str(shared_data_file("movielens/ml-100k.inter"))
    rows = read_movielens(path)
    assert len(rows["rating"]) == 100_000
    cut = rows["timestamp"][80_000 - 1]
    train, train_labels = read_raw(movielens_dataset(path, 8192, split="train"))
    assert len(train_labels) == 80_000
    later = rows["timestamp"][80_000:]
    assert np.all(later >= cut)
    ratings = rows["rating"][:80_000]
    assert np.array_equal(train_labels[:, 0], (ratings >= 4).astype("float32"))
