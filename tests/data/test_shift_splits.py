"""Shift-aware splits: training, same-period and later-period rows."""

import numpy as np
import pytest

from keras_adrec.data import SyntheticCriteo
from keras_adrec.data import TaobaoEvents
from keras_adrec.data.shift_splits import criteo_shift_split
from keras_adrec.data.shift_splits import positional_shift_split
from keras_adrec.data.shift_splits import synthetic_shift_split
from keras_adrec.data.shift_splits import taobao_shift_split


def criteo_lines(first, count, label=0):
    """Criteo rows whose C1 token is the row number (`first` ...)."""
    lines = []
    for k in range(first, first + count):
        dense = "\t".join(str(k) for _ in range(13))
        tokens = "\t".join([f"{k:08x}"] + ["0000000a"] * 25)
        lines.append(f"{(label + k) % 2}\t{dense}\t{tokens}")
    return "\n".join(lines) + "\n"


def test_criteo_split_rows_and_vocabulary_from_training_only(tmp_path):
    head = tmp_path / "head.txt"
    head.write_text(criteo_lines(0, 10))
    later = tmp_path / "later.txt"
    later.write_text(criteo_lines(100, 4))
    split = criteo_shift_split(head, later)
    stats = split.stats()
    assert [stats[p]["rows"] for p in ("train", "same", "later")] == [8, 2, 4]
    # C1 of rows 1-8 has ids; rows 9-10 and the later rows are unseen.
    c1 = {
        p: getattr(split, p)[0]["sparse"][:, 0]
        for p in ("train", "same", "later")
    }
    assert np.all(c1["train"] > 0)
    assert np.all(c1["same"] == 0) and np.all(c1["later"] == 0)
    assert split.preprocessor.vocabulary_sizes[0] == 9
    # Rows keep file order: the same period is rows 9 and 10.
    np.testing.assert_allclose(
        split.same[0]["dense"][:, 0], np.log1p([8.0, 9.0]), rtol=1e-6
    )
    assert stats["later"]["oov_share"] == pytest.approx(1 / 26)
    assert "rows 1-8 train, rows 9-10 same period" in split.description


def test_ranking_data_view_validates_on_the_later_period(tmp_path):
    head = tmp_path / "head.txt"
    head.write_text(criteo_lines(0, 10))
    later = tmp_path / "later.txt"
    later.write_text(criteo_lines(100, 4))
    split = criteo_shift_split(head, later)
    data = split.ranking_data()
    assert len(data.train[1]) == 8 and data.train_rows == 8
    assert len(data.val[1]) == 4 and len(data.holdout[1]) == 2
    assert data.vocabulary_sizes == split.preprocessor.vocabulary_sizes


def test_hashing_mode_reports_no_oov_share(tmp_path):
    head = tmp_path / "head.txt"
    head.write_text(criteo_lines(0, 10))
    later = tmp_path / "later.txt"
    later.write_text(criteo_lines(100, 4))
    split = criteo_shift_split(head, later, max_index_range=50)
    assert split.stats()["later"]["oov_share"] is None


def test_synthetic_split_holds_out_rows_of_the_training_days():
    generator = SyntheticCriteo(
        rows_per_day=60, num_days=3, scale=1e-5, min_cardinality=20
    )
    split = synthetic_shift_split(generator, same_rows=7)
    stats = split.stats()
    assert [stats[p]["rows"] for p in ("train", "same", "later")] == [
        120,
        14,
        60,
    ]
    assert split.name == "synthetic"
    assert split.ranking_data().source["synthetic"] is True


@pytest.mark.parametrize("arg", ["later_fraction", "same_fraction"])
def test_positional_split_checks_fractions(tmp_path, arg):
    with pytest.raises(ValueError, match=f"`{arg}` must lie in"):
        positional_shift_split("avazu", tmp_path / "x.csv", **{arg: 1.0})


def taobao_events(users=6, per_user=12):
    rng = np.random.default_rng(0)
    rows = []
    for user in range(users):
        for k in range(per_user):
            item = int(rng.integers(1, 40))
            rows.append((user + 1, item, item % 5 + 1, "pv", 1000 * k + user))
    return TaobaoEvents.from_arrays(*map(list, zip(*rows)))


def test_taobao_split_by_time_holds_out_each_users_latest_window():
    split = taobao_shift_split(taobao_events(), history_length=3)
    cut = int(split.description.split("timestamp ")[1].split(":")[0])
    # Training and same-period windows end at or before the cut; every
    # later window's target is after it.
    assert split.train.timestamp.max() <= cut
    assert split.same.timestamp.max() <= cut
    assert split.later.timestamp[:, -1].min() > cut
    # The same period is each user's latest window before the cut (with
    # its negative), so every training window of a user ends before it.
    same_time = dict(zip(split.same.raw_user, split.same.timestamp[:, -1]))
    assert sorted(same_time) == sorted(set(split.train.raw_user))
    for user, end in zip(split.train.raw_user, split.train.timestamp[:, -1]):
        assert end < same_time[user]
    # Its positive target is in no training window.
    positives = split.same.label[:, 0] == 1
    targets = set(
        zip(split.same.raw_user[positives], split.same.timestamp[positives, -1])
    )
    seen = {
        (u, t)
        for u, times in zip(split.train.raw_user, split.train.timestamp)
        for t in times
    }
    assert not targets & seen
    stats = split.stats()
    assert stats["same"]["rows"] == 2 * len(same_time)  # 1 negative each
    assert split.vocabulary_sizes == list(split.vocabulary.vocabulary_sizes)
