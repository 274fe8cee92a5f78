"""Train / validation splits of line-oriented data, decided while streaming.

Two modes, both deterministic and both decided per data row (a line after
any header), so every reader and every pass sees the same split:

- `"time"` (default): the data are in time order (files in the given or
  natural name order, lines in file order). The last `val_fraction` of all
  rows is validation, the rest training, as DLRM holds out Criteo's last
  day. The row count comes from one counting pass over the files at
  construction (a byte scan, no parsing). `val_fraction=0.2` over 10,000
  rows gives rows 1-8,000 to training and 8,001-10,000 to validation.
- `"random"`: row `(file number f, row index r)` goes to validation when a
  keyed SipHash (`tf.strings.to_hash_bucket_strong`, key = `seed`) of the
  string "f:r" falls in the first `val_fraction` of 2**20 buckets. No
  counting pass; the same seed and files give the same split, and the two
  splits are disjoint and together complete.

Splits are by line position: a malformed line still occupies its place, so
the split does not depend on `on_bad_lines`. Explicit validation files (a
separate path) need no split at all: read them with `split=None`.
"""

import tensorflow as tf

SPLITS = (None, "train", "val")
SPLIT_MODES = ("time", "random")
_RANDOM_BUCKETS = 2**20
# Second half of the SipHash key: fixed, so only `seed` varies the split.
_RANDOM_KEY = 0x5EED5EED


def validate_split_args(split, val_fraction, split_mode, seed):
    if split not in SPLITS:
        raise ValueError(
            f"`split` must be one of {SPLITS}. Received: split={split!r}"
        )
    if split_mode not in SPLIT_MODES:
        raise ValueError(
            f"`split_mode` must be one of {SPLIT_MODES}. "
            f"Received: split_mode={split_mode!r}"
        )
    if split is not None and not 0.0 < val_fraction < 1.0:
        raise ValueError(
            "`val_fraction` must be strictly between 0 and 1. "
            f"Received: val_fraction={val_fraction}"
        )
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(
            f"`seed` must be a non-negative int. Received: seed={seed!r}"
        )


def time_split_sizes(total_rows, val_fraction):
    """Return `(num_train, num_val)`: the last `round(total * f)` rows val."""
    num_val = int(round(total_rows * val_fraction))
    return total_rows - num_val, num_val


def time_split_ranges(row_counts, val_fraction, split):
    """Per-file row ranges of one split under the time-ordered split.

    Args:
        row_counts: list of int. Data rows of each file, in time order.
        val_fraction: float. Fraction of all rows, at the end, for "val".
        split: "train" or "val".

    Returns:
        A list with one `(start, count)` per file: the split's rows of that
        file are its rows `start .. start + count - 1` (0-based).
    """
    num_train, _ = time_split_sizes(sum(row_counts), val_fraction)
    begin, end = (0, num_train) if split == "train" else (num_train, None)
    ranges = []
    offset = 0
    for count in row_counts:
        lo = max(begin, offset)
        hi = offset + count if end is None else min(end, offset + count)
        ranges.append((lo - offset, hi - lo) if hi > lo else (0, 0))
        offset += count
    return ranges


def random_split_mask(file_number, row_index, val_fraction, seed, split):
    """Graph op: which rows of a batch belong to `split` (random mode).

    Args:
        file_number: scalar int64 tensor, the file's position in the list.
        row_index: int64 tensor [B], 0-based data-row index in that file.
        val_fraction: float.
        seed: int, the hash key.
        split: "train" or "val".

    Returns:
        bool tensor [B].
    """
    keys = tf.strings.join(
        [
            tf.strings.as_string(file_number),
            tf.strings.as_string(row_index),
        ],
        separator=":",
    )
    buckets = tf.strings.to_hash_bucket_strong(
        keys, _RANDOM_BUCKETS, key=[seed, _RANDOM_KEY]
    )
    is_val = buckets < int(round(val_fraction * _RANDOM_BUCKETS))
    return is_val if split == "val" else tf.logical_not(is_val)
