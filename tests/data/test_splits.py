"""Split arithmetic: time ranges per file, and the seeded random mask."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.data.splits import random_split_mask
from keras_adrec.data.splits import time_split_ranges
from keras_adrec.data.splits import time_split_sizes
from keras_adrec.data.splits import validate_split_args


def test_time_split_sizes():
    assert time_split_sizes(10_000, 0.2) == (8_000, 2_000)
    assert time_split_sizes(9_999, 0.2) == (7_999, 2_000)
    assert time_split_sizes(7, 0.5) == (3, 4)  # round(3.5) = 4


def test_time_split_ranges_cut_the_right_file():
    counts = [10, 7, 13]  # 30 rows; 0.3 -> the last 9 are validation
    assert time_split_ranges(counts, 0.3, "train") == [(0, 10), (0, 7), (0, 4)]
    assert time_split_ranges(counts, 0.3, "val") == [(0, 0), (0, 0), (4, 9)]
    # The cut falls exactly on a file boundary.
    assert time_split_ranges([5, 5], 0.5, "train") == [(0, 5), (0, 0)]
    assert time_split_ranges([5, 5], 0.5, "val") == [(0, 0), (0, 5)]


def test_random_split_mask_is_a_seeded_partition():
    rows = tf.range(20_000, dtype=tf.int64)
    file_number = tf.constant(1, tf.int64)
    val = random_split_mask(file_number, rows, 0.2, 5, "val").numpy()
    train = random_split_mask(file_number, rows, 0.2, 5, "train").numpy()
    np.testing.assert_array_equal(val, ~train)
    # Binomial(20000, 0.2): mean 4000, std 57.
    assert 3_700 < val.sum() < 4_300
    again = random_split_mask(file_number, rows, 0.2, 5, "val").numpy()
    np.testing.assert_array_equal(val, again)
    # The decision is per row: it does not depend on the batch.
    part = random_split_mask(file_number, rows[7:19], 0.2, 5, "val").numpy()
    np.testing.assert_array_equal(part, val[7:19])
    other_seed = random_split_mask(file_number, rows, 0.2, 6, "val").numpy()
    other_file = random_split_mask(
        tf.constant(2, tf.int64), rows, 0.2, 5, "val"
    ).numpy()
    assert (other_seed != val).sum() > 1_000
    assert (other_file != val).sum() > 1_000


@pytest.mark.parametrize(
    "args, message",
    [
        (("val", 0.0, "time", 0), "`val_fraction` must be strictly"),
        (("train", 0.2, "time", -1), "`seed` must be a non-negative int"),
        (("all", 0.2, "time", 0), "`split` must be one of"),
    ],
)
def test_invalid_split_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        validate_split_args(*args)
