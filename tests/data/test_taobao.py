"""Tests of the Taobao reader and the TBSM-style sequential preparation.

References are plain-Python recomputations (csv module, dicts and sorted
lists) independent of the vectorised numpy/pyarrow implementation, and the
published counts of the real 84k-line sample.
"""

import collections
import csv
import gzip
import logging
import math

import numpy as np
import pytest

from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.taobao import prepare_taobao
from keras_adrec.data.taobao_events import BEHAVIORS
from keras_adrec.data.taobao_events import TaobaoEvents
from keras_adrec.data.taobao_events import read_taobao_events
from keras_adrec.data.taobao_vocabulary import TaobaoVocabulary
from tests import samples

SAMPLE = "taobao/UserBehavior_head84k.csv"


def sample_path():
    path = samples.shared_data_file(SAMPLE)
    if path is None:
        pytest.skip(f"Taobao sample {SAMPLE} absent (set ADREC_DATA_DIR).")
    return path


@pytest.fixture(scope="module")
def sample_events():
    return read_taobao_events(sample_path())


@pytest.fixture(scope="module")
def sample_rows():
    """The sample parsed with the csv module: list of 5-tuples."""
    with open(sample_path(), newline="") as f:
        return [
            (int(u), int(i), int(c), b, int(t))
            for u, i, c, b, t in csv.reader(f)
        ]


def write(tmp_path, text, name="events.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------- reader


def test_reader_counts_real_sample(sample_events, sample_rows):
    events = sample_events
    assert events.num_events == 84475
    assert len(np.unique(events.user_id)) == 815
    assert len(np.unique(events.item_id)) == 55368
    assert events.behavior_counts() == {
        "pv": 75872,
        "cart": 4497,
        "fav": 2356,
        "buy": 1750,
    }
    assert events.num_skipped_lines == 0
    # Every value equals the csv-module parse, in file order.
    u, i, c, b, t = zip(*sample_rows)
    np.testing.assert_array_equal(events.user_id, u)
    np.testing.assert_array_equal(events.item_id, i)
    np.testing.assert_array_equal(events.category_id, c)
    np.testing.assert_array_equal(events.timestamp, t)
    codes = [BEHAVIORS.index(x) + 1 for x in b]
    np.testing.assert_array_equal(events.behavior, codes)


def test_reader_chunks_give_same_events(tmp_path):
    lines = [
        f"{k % 7},{100 + k},{k % 3},{BEHAVIORS[k % 4]},{k}" for k in range(50)
    ]
    path = write(tmp_path, "\n".join(lines))  # no final newline
    whole = read_taobao_events(path)
    chunked = read_taobao_events(path, block_size=17)
    assert whole.num_events == 50
    for name in ("user_id", "item_id", "category_id", "behavior", "timestamp"):
        np.testing.assert_array_equal(
            getattr(whole, name), getattr(chunked, name)
        )
    np.testing.assert_array_equal(whole.item_id, np.arange(100, 150))


GOOD = "1,10,5,pv,100\n"

INTEGER = "expected a non-negative decimal integer, found"
BAD_LINES = [  # (line, column, defect)
    ("1,10,5,pv\n", None, "expected 5 fields, found 4"),
    ("1,10,5,pv,100,3\n", None, "expected 5 fields, found 6"),
    ("\n", None, "empty line"),
    ("1,x,5,pv,100\n", "item_id", f"{INTEGER} `x`"),
    ("0x10,10,5,pv,100\n", "user_id", f"{INTEGER} `0x10`"),
    ("1,10, 5,pv,100\n", "category_id", f"{INTEGER} ` 5`"),
    ("1,-10,5,pv,100\n", "item_id", f"{INTEGER} `-10`"),
    ("1,10,5,pv,1.5\n", "timestamp", "expected a decimal integer, found `1.5`"),
    ("1,10,5,pv,\n", "timestamp", "expected a decimal integer, found ``"),
    (
        "1,10,5,click,100\n",
        "behavior",
        "expected one of pv, cart, fav, buy, found `click`",
    ),
    ("1,10,5,PV,100\n", "behavior", "expected one of pv, cart, fav, buy"),
]


@pytest.mark.parametrize("bad_line, column, defect", BAD_LINES)
@pytest.mark.parametrize("block_size", [1 << 20, 40])
def test_bad_line_stops_reading(tmp_path, bad_line, column, defect, block_size):
    text = GOOD * 6 + bad_line + GOOD * 5
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError) as info:
        read_taobao_events(path, block_size=block_size)
    error = info.value
    assert (error.file, error.line, error.column) == (str(path), 7, column)
    assert error.defect.startswith(defect)
    where = f"{path}, line 7" + (f", column {column}" if column else "")
    assert str(error).startswith(f"{where}: {defect}")


def test_first_defect_is_reported(tmp_path):
    text = GOOD * 2 + "1,2\n" + GOOD + "1,2,3,zz,4\n" + GOOD
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError, match="line 3: expected 5 fields"):
        read_taobao_events(path)
    text = GOOD * 2 + "1,2,3,zz,4\n" + GOOD + "1,2\n" + GOOD
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError, match="line 3, column behavior"):
        read_taobao_events(path)


@pytest.mark.parametrize("block_size", [1 << 20, 30])
def test_skip_bad_lines(tmp_path, caplog, block_size):
    # Good line k (1-based line 2k + 1) and bad line k (line 2k + 2).
    good = [
        f"{k},{k + 10},{k + 20},{BEHAVIORS[k % 4]},{1000 + k}\n"
        for k in range(len(BAD_LINES) + 1)
    ]
    bad = [line for line, _, _ in BAD_LINES]
    text = "".join(g + b for g, b in zip(good, bad)) + good[-1]
    path = write(tmp_path, text)
    with caplog.at_level(logging.WARNING):
        events = read_taobao_events(
            path, on_bad_lines="skip", block_size=block_size
        )
    assert events.num_skipped_lines == len(BAD_LINES)
    assert f"skipped {len(BAD_LINES)} malformed lines" in caplog.text
    # The warning names the first five skipped lines; field-count defects
    # are dropped by the parser, so later line numbers need re-counting.
    for k, (_, column, defect) in enumerate(BAD_LINES[:5]):
        where = f"line {2 * k + 2}" + (f", column {column}" if column else "")
        assert f"{where}: {defect}" in caplog.text
    assert f"line {2 * 5 + 2}:" not in caplog.text
    n = len(good)
    np.testing.assert_array_equal(events.user_id, np.arange(n))
    np.testing.assert_array_equal(events.item_id, np.arange(n) + 10)
    np.testing.assert_array_equal(events.category_id, np.arange(n) + 20)
    np.testing.assert_array_equal(events.timestamp, np.arange(n) + 1000)
    np.testing.assert_array_equal(events.behavior, np.arange(n) % 4 + 1)


def test_value_defect_line_after_dropped_lines(tmp_path):
    # Two lines the parser drops (field count) precede a value defect in
    # the same chunk; the reported line must count them.
    text = "1,2\n" + GOOD + "1,2,3,4,5,6\n" + GOOD + "1,2,3,zz,4\n"
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError, match="line 1: expected 5 fields"):
        read_taobao_events(path)
    events_log = logging.getLogger("keras_adrec.data.taobao_events")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    events_log.addHandler(handler)
    try:
        read_taobao_events(path, on_bad_lines="skip")
    finally:
        events_log.removeHandler(handler)
    message = records[0].getMessage()
    assert "line 1: expected 5 fields, found 2" in message
    assert "line 3: expected 5 fields, found 6" in message
    assert "line 5, column behavior: expected one of" in message


def test_gzip_file(tmp_path):
    path = tmp_path / "events.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(GOOD * 3 + "2,11,6,buy,101\n")
    events = read_taobao_events(path)
    np.testing.assert_array_equal(events.user_id, [1, 1, 1, 2])
    np.testing.assert_array_equal(events.behavior, [1, 1, 1, 4])


def test_missing_empty_and_all_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_taobao_events(tmp_path / "absent.csv")
    with pytest.raises(DataFormatError, match="empty"):
        read_taobao_events(write(tmp_path, "", "empty.csv"))
    all_bad = write(tmp_path, "a,b\n1,2,3\n", "bad.csv")
    with pytest.raises(DataFormatError, match="no valid line"):
        read_taobao_events(all_bad, on_bad_lines="skip")
    with pytest.raises(ValueError, match="on_bad_lines"):
        read_taobao_events(all_bad, on_bad_lines="warn")


# ------------------------------------------------------------ preparation


def reference_windows(rows, history_length, stride, fraction, cap):
    """Plain-Python TBSM windows: {"train"/"validation": [(user, items,
    times)]} and the cut time, following the module docstring rules."""
    per_user = collections.defaultdict(list)
    for position, (u, i, c, b, t) in enumerate(rows):
        per_user[u].append((t, position, i))
    windows = []
    for u, events in per_user.items():
        events.sort()  # by time, then file position: a stable sort
        n = len(events)
        for j in range(history_length, n):
            if (n - 1 - j) % stride == 0:
                part = events[j - history_length : j + 1]
                windows.append(
                    (u, tuple(e[2] for e in part), tuple(e[0] for e in part))
                )
    times = sorted(w[2][-1] for w in windows)
    k = math.floor((1 - fraction) * len(times))
    cut = times[k - 1] if k else times[0] - 1
    result = {"train": [], "validation": []}
    for split in result:
        chosen = collections.defaultdict(list)
        for w in windows:
            if (w[2][-1] <= cut) == (split == "train"):
                chosen[w[0]].append(w)
        for u, ws in chosen.items():
            result[split].extend(ws if cap is None else ws[-cap:])
    return result, cut


def positive_windows(points):
    positive = points.label[:, 0] == 1
    return [
        (int(u), tuple(items.tolist()), tuple(times.tolist()))
        for u, items, times in zip(
            points.raw_user[positive],
            points.raw_item[positive],
            points.timestamp[positive],
        )
    ]


@pytest.mark.parametrize(
    "history_length, stride, cap, reverse",
    [(20, 1, None, False), (20, 3, 2, False), (5, 1, 4, True)],
)
def test_points_match_plain_python(
    sample_events, sample_rows, history_length, stride, cap, reverse
):
    # The sample is grouped by user and time-sorted (the file order is used
    # as is); reversed, the events need the stable sort.
    events, rows = sample_events, sample_rows
    if reverse:
        rows = rows[::-1]
        events = TaobaoEvents.from_arrays(*zip(*rows))
    split = prepare_taobao(
        events,
        history_length=history_length,
        stride=stride,
        max_points_per_user=cap,
    )
    expected, cut = reference_windows(rows, history_length, stride, 0.3, cap)
    assert split.cut_time == cut
    for name in ("train", "validation"):
        points = getattr(split, name)
        assert len(points) == 2 * len(expected[name])
        assert sorted(positive_windows(points)) == sorted(expected[name])


def test_no_leakage_and_time_split(sample_events):
    split = prepare_taobao(sample_events, negative_ratio=2)
    cut = split.cut_time
    for points in (split.train, split.validation):
        # History never comes after the target (ties allowed).
        assert np.all(np.diff(points.timestamp, axis=1) >= 0)
        assert points.sparse.shape[1:] == (21, 3)
    assert np.all(split.train.timestamp <= cut)
    assert np.all(split.validation.timestamp[:, -1] > cut)
    # The validation period holds about 30% of the windows.
    fraction = len(split.validation) / (
        len(split.train) + len(split.validation)
    )
    assert 0.25 < fraction <= 0.31


def test_ties_keep_file_order(tmp_path):
    # User 1's events are out of time order in the file, two share t=50.
    events = TaobaoEvents.from_arrays(
        [1, 2, 1, 1, 1, 2, 2],
        [11, 21, 12, 13, 14, 22, 23],
        [0, 0, 0, 0, 0, 0, 0],
        ["pv"] * 7,
        [60, 5, 50, 50, 10, 6, 7],
    )
    split = prepare_taobao(
        events, history_length=2, validation_fraction=0.0, negative_ratio=0
    )
    assert positive_windows(split.train) == [
        (1, (14, 12, 13), (10, 50, 50)),
        (1, (12, 13, 11), (50, 50, 60)),
        (2, (21, 22, 23), (5, 6, 7)),
    ]


def test_negatives(sample_events):
    ratio = 3
    split = prepare_taobao(sample_events, negative_ratio=ratio, seed=5)
    events = sample_events
    first_category = {}
    train_first_category = {}
    for i, c, t in zip(
        events.item_id.tolist(),
        events.category_id.tolist(),
        events.timestamp.tolist(),
    ):
        first_category.setdefault(i, c)
        if t <= split.cut_time:
            train_first_category.setdefault(i, c)
    for points, pool in (
        (split.train, train_first_category),
        (split.validation, first_category),
    ):
        label = points.label[:, 0]
        assert label.mean() == pytest.approx(1 / (1 + ratio))
        negative = label == 0
        items = points.raw_item[negative, -1]
        assert np.all(items != points.true_next_item[negative])
        assert set(items.tolist()) <= set(pool)
        expected = [pool[i] for i in items.tolist()]
        np.testing.assert_array_equal(
            points.raw_category[negative, -1], expected
        )
        # Each positive is followed by its negatives, same history.
        windows = points.raw_item.reshape(-1, 1 + ratio, 21)
        assert np.all(windows[:, :, :-1] == windows[:, :1, :-1])
        np.testing.assert_array_equal(
            windows[:, 0, -1], points.true_next_item[:: 1 + ratio]
        )


def test_negative_sampling_is_seeded(sample_events):
    def negatives(seed):
        split = prepare_taobao(sample_events, max_points_per_user=2, seed=seed)
        return split.train.raw_item[:, -1], split.validation.raw_item[:, -1]

    first, again, other = negatives(5), negatives(5), negatives(6)
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_negative_resampling_with_two_items():
    # With two items the true next item is drawn half the time; every
    # negative must be the other item.
    n = 40
    events = TaobaoEvents.from_arrays(
        np.zeros(n, int),
        np.arange(n) % 2,
        np.arange(n) % 2 + 7,
        ["pv"] * n,
        np.arange(n),
    )
    split = prepare_taobao(
        events, history_length=2, validation_fraction=0.0, negative_ratio=4
    )
    negative = split.train.label[:, 0] == 0
    np.testing.assert_array_equal(
        split.train.raw_item[negative, -1],
        1 - split.train.true_next_item[negative],
    )
    np.testing.assert_array_equal(
        split.train.raw_category[negative, -1],
        split.train.raw_item[negative, -1] + 7,
    )


def small_events():
    """Two users; category 900, item 90 and user 3 appear only late."""
    users = [1] * 6 + [2] * 6 + [3] * 3
    items = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 90, 1, 2, 3]
    categories = [11, 11, 12, 12, 11, 12, 13, 13, 14, 14, 13, 900, 11, 11, 12]
    behaviors = ["pv", "cart", "fav", "buy", "pv", "pv"] * 2 + ["pv"] * 3
    times = [1, 2, 3, 4, 5, 10, 1, 2, 3, 4, 5, 11, 8, 9, 12]
    return TaobaoEvents.from_arrays(users, items, categories, behaviors, times)


def test_validation_only_ids_map_to_oov():
    split = prepare_taobao(
        small_events(), history_length=2, cut_time=9, negative_ratio=1
    )
    vocabulary = split.vocabulary
    assert 900 not in vocabulary.vocabulary("category").tolist()
    assert 90 not in vocabulary.vocabulary("item").tolist()
    assert 3 not in vocabulary.vocabulary("user").tolist()
    val = split.validation
    positive = val.label[:, 0] == 1
    assert val.raw_category[positive, -1].tolist() == [12, 900, 12]
    assert val.sparse[positive, -1, 2].tolist()[1] == 0  # category 900
    assert val.sparse[positive, -1, 1].tolist()[1] == 0  # item 90
    assert np.all(val.sparse[val.raw_user == 3, :, 0] == 0)
    # Known ids map to 1 + their rank among the sorted training ids.
    train = split.train
    for column, raw in enumerate(
        (
            np.broadcast_to(train.raw_user[:, None], train.raw_item.shape),
            train.raw_item,
            train.raw_category,
        )
    ):
        known = sorted(set(raw.ravel().tolist()))
        expected = [[known.index(x) + 1 for x in row] for row in raw.tolist()]
        np.testing.assert_array_equal(train.sparse[:, :, column], expected)
    # The vocabulary holds exactly the ids of the training points.
    assert vocabulary.vocabulary("item").tolist() == sorted(
        set(train.raw_item.ravel().tolist())
    )
    assert vocabulary.vocabulary_sizes == [
        len(set(train.raw_user.tolist())) + 1,
        len(set(train.raw_item.ravel().tolist())) + 1,
        len(set(train.raw_category.ravel().tolist())) + 1,
    ]
    assert train.vocabulary_sizes == vocabulary.vocabulary_sizes


def test_time_feature_and_behavior():
    events = small_events()
    split = prepare_taobao(
        events, history_length=2, cut_time=9, include_behavior=True
    )
    train = split.train
    t = train.timestamp
    expected = [
        [math.log(1 + (row[-1] - x) / 3600) for x in row] for row in t.tolist()
    ]
    np.testing.assert_allclose(train.dense[..., 0], expected, rtol=1e-6)
    assert train.dense.dtype == np.float32
    np.testing.assert_array_equal(train.dense[:, -1, 0], 0.0)
    # Behavior of history events from the file; target position unknown (0).
    code = {
        (u, i): b
        for u, i, b in zip(
            events.user_id.tolist(),
            events.item_id.tolist(),
            events.behavior.tolist(),
        )
    }
    expected_behavior = [
        [code[(u, i)] for i in row[:-1]] + [0]
        for u, row in zip(train.raw_user.tolist(), train.raw_item.tolist())
    ]
    np.testing.assert_array_equal(train.behavior, expected_behavior)
    assert train.behavior.dtype == np.int32
    position = prepare_taobao(
        events, history_length=2, cut_time=9, time_feature="position"
    )
    np.testing.assert_allclose(
        position.train.dense[0, :, 0], [0, 1 / 3, 2 / 3], rtol=1e-6
    )
    assert position.train.behavior is None
    assert "behavior" not in position.train.features


def test_artifacts_round_trip(tmp_path):
    events = small_events()
    split = prepare_taobao(events, history_length=2, cut_time=9)
    split.vocabulary.save_artifacts(tmp_path / "artifacts")
    loaded = TaobaoVocabulary.load_artifacts(tmp_path / "artifacts")
    assert loaded == split.vocabulary
    assert loaded.vocabulary_sizes == split.vocabulary.vocabulary_sizes
    again = prepare_taobao(
        events, history_length=2, cut_time=9, vocabulary=loaded
    )
    np.testing.assert_array_equal(
        again.validation.sparse, split.validation.sparse
    )
    np.testing.assert_array_equal(again.train.sparse, split.train.sparse)
    with pytest.raises(FileNotFoundError, match="save_artifacts"):
        TaobaoVocabulary.load_artifacts(tmp_path / "nothing")


def test_to_dataset():
    split = prepare_taobao(
        small_events(), history_length=2, cut_time=9, include_behavior=True
    )
    train = split.train
    batches = list(train.to_dataset(batch_size=3, shuffle=True, seed=1))
    features, label = batches[0]
    assert features["sparse"].shape == (3, 3, 3)
    assert features["sparse"].dtype.name == "int32"
    assert features["dense"].shape == (3, 3, 1)
    assert features["dense"].dtype.name == "float32"
    assert features["behavior"].shape == (3, 3)
    assert label.shape == (3, 1) and label.dtype.name == "float32"
    # Shuffling permutes whole points.
    got = np.concatenate([f["sparse"].numpy() for f, _ in batches])
    assert len(got) == len(train)
    assert rows(got) == rows(train.sparse)
    plain = list(train.to_dataset(batch_size=len(train)))
    np.testing.assert_array_equal(plain[0][1].numpy(), train.label)


def rows(array):
    return sorted(map(bytes, array.reshape(len(array), -1)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"history_length": 0}, "history_length"),
        ({"stride": 0}, "stride"),
        ({"negative_ratio": -1}, "negative_ratio"),
        ({"max_points_per_user": 0}, "max_points_per_user"),
        ({"validation_fraction": 1.5}, "validation_fraction"),
        ({"time_feature": "hours"}, "time_feature"),
        ({"vocabulary": {}}, "vocabulary"),
        ({"history_length": 50}, "No user has more than"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prepare_taobao(small_events(), **kwargs)
