"""Reader for MovieLens ratings as a click task (`.inter` files).

The file (RecBole's atomic format, as `ml-100k.inter`) is TAB-separated
with one header line, checked exactly: `user_id:token`, `item_id:token`,
`rating:float`, `timestamp:float`, TAB-separated.

Mapping to model inputs:

| source column | becomes                                             |
|---------------|-----------------------------------------------------|
| rating        | label: 1.0 (a click) when rating >= 4, else 0.0     |
| timestamp     | dense `hour_of_day` (0-23) and `day_of_week` (0-6,  |
|               | Monday 0), UTC; the rows are put in time order      |
| user_id       | categorical `user_id`                               |
| item_id       | categorical `item_id`                               |

The dense features come from each row alone, so nothing is learnt from
other rows (no counts that could leak the validation period). The rows are
read into memory (MovieLens-100k is 100,000 rows), ordered by timestamp
(stable: ties keep file order) and then split like the streaming readers:
with `split_mode="time"` the latest `val_fraction` of the ordered rows
validate (`keras_adrec.data.splits.time_split_sizes`).
"""

import numpy as np
import tensorflow as tf

from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.schema import DatasetSchema
from keras_adrec.data.splits import time_split_sizes
from keras_adrec.data.splits import validate_split_args

MOVIELENS_HEADER = [
    "user_id:token",
    "item_id:token",
    "rating:float",
    "timestamp:float",
]
"""The header of a MovieLens `.inter` file, in order."""

MOVIELENS_SCHEMA = DatasetSchema(
    name="movielens",
    dense_names=["hour_of_day", "day_of_week"],
    categorical_names=["user_id", "item_id"],
    label_name="rating",
)
"""MovieLens as a click task: 2 dense (from the timestamp), 2 categorical."""

CLICK_RATING = 4.0
"""A rating at or above this is a click (label 1)."""

_TAB = "\t"
_SECONDS_PER_DAY = 86_400
# 1970-01-01 was a Thursday: day 0 of the epoch is weekday 3 (Monday 0).
_EPOCH_WEEKDAY = 3


def read_movielens(paths):
    """All rows of MovieLens `.inter` files, in time order.

    Args:
        paths: str or list of str. The files; their rows are joined and
            ordered by timestamp (stable).

    Returns:
        A dict of numpy arrays, one entry per row in time order:
        `user_id`, `item_id` (str), `rating` (float64), `timestamp`
        (int64, seconds since the epoch).

    Raises:
        DataFormatError: a wrong header, a line without 4 TAB-separated
            fields, an empty id, or a rating or timestamp that is not a
            number (file, line, column).
        ValueError: no rows.
    """
    paths = [paths] if isinstance(paths, str) else list(paths)
    columns = {name: [] for name in ("user_id", "item_id", "rating", "time")}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            header = f.readline().rstrip("\n").rstrip("\r").split("\t")
            if header != MOVIELENS_HEADER:
                raise DataFormatError(
                    path,
                    1,
                    f"expected the header `{_TAB.join(MOVIELENS_HEADER)}`, "
                    f"found `{_TAB.join(header)}`",
                )
            for number, line in enumerate(f, start=2):
                line = line.rstrip("\n").rstrip("\r")
                if not line:
                    continue
                fields = line.split("\t")
                if len(fields) != 4:
                    raise DataFormatError(
                        path,
                        number,
                        f"expected 4 TAB-separated fields, found {len(fields)}",
                    )
                user, item, rating, stamp = fields
                for column, token in (("user_id", user), ("item_id", item)):
                    if not token:
                        raise DataFormatError(
                            path, number, "expected an id, found ``", column
                        )
                columns["user_id"].append(user)
                columns["item_id"].append(item)
                columns["rating"].append(
                    _number(rating, path, number, "rating")
                )
                columns["time"].append(
                    _number(stamp, path, number, "timestamp", whole=True)
                )
    if not columns["rating"]:
        raise ValueError(f"No MovieLens rows in {', '.join(paths)}.")
    timestamp = np.asarray(columns["time"], dtype=np.int64)
    order = np.argsort(timestamp, kind="stable")
    return {
        "user_id": np.asarray(columns["user_id"], dtype=object)[order],
        "item_id": np.asarray(columns["item_id"], dtype=object)[order],
        "rating": np.asarray(columns["rating"], dtype=np.float64)[order],
        "timestamp": timestamp[order],
    }


def movielens_features(rows):
    """Model inputs of rows from `read_movielens`.

    Returns:
        `(raw_features, labels)`: `{"dense": float32 [N, 2] (hour of day,
        day of week), "categorical": str [N, 2] (user, item)}` and float32
        `[N, 1]` labels (rating >= `CLICK_RATING`).
    """
    seconds = rows["timestamp"]
    days = seconds // _SECONDS_PER_DAY
    hour = (seconds % _SECONDS_PER_DAY) // 3600
    weekday = (days + _EPOCH_WEEKDAY) % 7
    dense = np.stack([hour, weekday], axis=1).astype(np.float32)
    categorical = np.stack([rows["user_id"], rows["item_id"]], axis=1)
    labels = (rows["rating"] >= CLICK_RATING).astype(np.float32)
    return {"dense": dense, "categorical": categorical}, labels[:, None]


def movielens_dataset(
    paths,
    batch_size,
    on_bad_lines="error",
    split=None,
    val_fraction=0.2,
    split_mode="time",
    seed=0,
    shuffle_buffer=0,
    repeat=False,
    drop_remainder=False,
    num_parallel_files=1,
    stats=None,
):
    """MovieLens `.inter` files as a `tf.data.Dataset` (a click task).

    The arguments are those of `keras_adrec.data.criteo_dataset`, but
    the rows are first ordered by timestamp, so `split_mode="time"`
    validates on the latest `val_fraction` of the rows by time;
    `split_mode="random"` draws the validation rows with a numpy
    generator seeded by `seed`. Malformed lines always raise
    (`on_bad_lines` must be `"error"`); `num_parallel_files` and `stats`
    are accepted for the common reader interface and have no effect.

    Returns:
        A `tf.data.Dataset` of `(raw_features, label)`: `raw_features =
        {"dense": float32 [B, 2], "categorical": tf.string [B, 2]}`,
        `label` float32 [B, 1] (1 when rating >= 4).

    Example:

    ```python
    ds = keras_adrec.data.movielens_dataset("ml-100k.inter", 256, "train")
    ```
    """
    del num_parallel_files, stats
    validate_split_args(split, val_fraction, split_mode, seed)
    if on_bad_lines != "error":
        raise ValueError(
            "MovieLens reading supports only on_bad_lines='error'. "
            f"Received: on_bad_lines={on_bad_lines!r}"
        )
    features, labels = movielens_features(read_movielens(paths))
    keep = split_rows(len(labels), split, val_fraction, split_mode, seed)
    dataset = tf.data.Dataset.from_tensor_slices(
        (
            {
                "dense": features["dense"][keep],
                "categorical": features["categorical"][keep].astype(str),
            },
            labels[keep],
        )
    )
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    if repeat:
        dataset = dataset.repeat()
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def split_rows(num_rows, split, val_fraction, split_mode, seed):
    """Indices of one split of `num_rows` rows in time order."""
    if split is None:
        return np.arange(num_rows)
    if split_mode == "time":
        num_train, _ = time_split_sizes(num_rows, val_fraction)
        is_val = np.arange(num_rows) >= num_train
    else:
        is_val = np.random.default_rng(seed).random(num_rows) < val_fraction
    return np.flatnonzero(is_val if split == "val" else ~is_val)


def _number(text, path, line, column, whole=False):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not np.isfinite(value):
        raise DataFormatError(
            path, line, f"expected a finite number, found `{text}`", column
        )
    if whole:
        if not value.is_integer():
            raise DataFormatError(
                path, line, f"expected whole seconds, found `{text}`", column
            )
        return int(value)
    return value
