"""Event logs for the sequential task: a head sample's cut last user and
MovieLens ratings as click sequences."""

import numpy as np
import pytest

from keras_adrec.data import drop_cut_last_user
from keras_adrec.data import movielens_click_events
from keras_adrec.data import prepare_movielens_sequences
from keras_adrec.data import read_taobao_events
from keras_adrec.data.movielens import MOVIELENS_HEADER
from keras_adrec.data.sequence_events import MOVIELENS_CATEGORY
from keras_adrec.data.taobao_events import TaobaoEvents
from tests.samples import shared_data_file

BASE = 1_000_000_000


def events(users, times=None):
    users = np.asarray(users, dtype=np.int64)
    n = len(users)
    times = np.arange(n) if times is None else times
    return TaobaoEvents(
        user_id=users,
        item_id=np.arange(100, 100 + n, dtype=np.int64),
        category_id=np.ones(n, dtype=np.int64),
        behavior=np.ones(n, dtype=np.int8),
        timestamp=np.asarray(times, dtype=np.int64),
    )


def write_inter(path, rows):
    lines = ["\t".join(MOVIELENS_HEADER)]
    lines += ["\t".join(str(x) for x in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_grouped_log_loses_its_last_user():
    kept, dropped = drop_cut_last_user(events([5, 5, 9, 9, 9, 2, 2]))
    assert dropped == 2
    assert kept.user_id.tolist() == [5, 5, 9, 9, 9]
    assert kept.item_id.tolist() == [100, 101, 102, 103, 104]
    assert kept.timestamp.tolist() == [0, 1, 2, 3, 4]


def test_log_not_grouped_by_user_is_kept_whole():
    log = events([5, 9, 5, 9])
    kept, dropped = drop_cut_last_user(log)
    assert dropped is None
    assert kept is log


def test_real_taobao_sample_drops_user_100370():
    path = shared_data_file("taobao/UserBehavior_head84k.csv")
    if path is None:
        pytest.skip("the Taobao sample is absent (set ADREC_DATA_DIR)")
    log = read_taobao_events(str(path))
    kept, dropped = drop_cut_last_user(log)
    assert dropped == 100370
    assert log.num_events - kept.num_events == 188
    assert 100370 not in set(kept.user_id.tolist())


def test_clicks_are_ratings_of_four_or_more_grouped_by_user(tmp_path):
    # File order is not time order; user "b" clicks first.
    rows = [
        ("a", "m2", 5, BASE + 30),
        ("b", "m1", 4, BASE + 10),
        ("a", "m1", 3, BASE + 5),  # not a click
        ("a", "m3", 4, BASE + 20),
        ("b", "m3", 5, BASE + 40),
        ("b", "m2", 1, BASE + 50),  # not a click
    ]
    log = movielens_click_events(write_inter(tmp_path / "r.inter", rows))
    # Tokens numbered from 1 in sorted order: a=1, b=2; m1=1, m2=2, m3=3.
    assert log.user_id.tolist() == [2, 2, 1, 1]
    assert log.item_id.tolist() == [1, 3, 3, 2]
    assert log.timestamp.tolist() == [
        BASE + 10,
        BASE + 40,
        BASE + 20,
        BASE + 30,
    ]
    assert set(log.category_id.tolist()) == {MOVIELENS_CATEGORY}
    assert set(log.behavior.tolist()) == {1}


def test_no_click_is_a_clear_error(tmp_path):
    path = write_inter(tmp_path / "r.inter", [("a", "m1", 3, BASE)])
    with pytest.raises(ValueError, match="No MovieLens rating is 4.0"):
        movielens_click_events(path)


def test_movielens_windows_validate_on_the_later_period(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"m{rng.integers(50)}", 4 + (k % 2), BASE + 60 * k + u)
        for u in range(4)
        for k in range(12)
    ]
    split = prepare_movielens_sequences(
        write_inter(tmp_path / "r.inter", rows), history_length=5, seed=1
    )
    train, val = split.train, split.validation
    # 4 users x (12 - 5) windows, one negative per positive.
    assert len(train) + len(val) == 4 * 7 * 2
    assert train.timestamp.max() <= split.cut_time
    assert val.timestamp[:, -1].min() > split.cut_time
    assert np.all(np.diff(train.timestamp, axis=1) >= 0)
    assert train.label.mean() == 0.5


def test_real_movielens_sample_sizes():
    path = shared_data_file("movielens/ml-100k.inter")
    if path is None:
        pytest.skip("the MovieLens sample is absent (set ADREC_DATA_DIR)")
    log = movielens_click_events(str(path))
    assert log.num_events == 55375
    split = prepare_movielens_sequences(str(path), seed=0)
    assert (len(split.train), len(split.validation)) == (53458, 22910)
