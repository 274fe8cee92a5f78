"""Shift-aware splits: training, same-period and later-period rows."""

import numpy as np
import pytest

from keras_adrec.data import SyntheticCriteo
from keras_adrec.data.shift_splits import criteo_shift_split
from keras_adrec.data.shift_splits import positional_shift_split
from keras_adrec.data.shift_splits import synthetic_shift_split


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
