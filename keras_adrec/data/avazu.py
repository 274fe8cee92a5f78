"""Reader for Avazu click logs (`train.csv`: CSV with a header, plain or gzip).

Header (checked exactly, in every file): `id, click, hour, C1, banner_pos,
site_id, site_domain, site_category, app_id, app_domain, app_category,
device_id, device_ip, device_model, device_type, device_conn_type,
C14, ..., C21` (24 comma-separated fields, no quoting).

Mapping to model inputs (RM3 of the paper uses 1 dense and 21 sparse):

| source column          | becomes                                         |
|------------------------|-------------------------------------------------|
| id                     | ignored (a row identifier)                      |
| click (`0`/`1`)        | label, float32 [B, 1]                           |
| hour (`YYMMDDHH`)      | dense feature `hour_of_day` = HH (0..23)        |
| C1 .. C21 (the 21      | categorical features, raw tokens, in header     |
| columns after hour)    | order: C1, banner_pos, site_id, site_domain,    |
|                        | site_category, app_id, app_domain, app_category,|
|                        | device_id, device_ip, device_model, device_type,|
|                        | device_conn_type, C14, C15, ..., C21            |

Validation: exactly 24 fields, click `0|1`, hour eight digits with
HH in 00..23. Categorical tokens are opaque strings (hashes or integers
such as `-1`) and are kept as they are; an empty token is the token "".
Avazu's `test.csv` has no `click` column and is not accepted.
"""

import tensorflow as tf

from keras_adrec.data._text_reader import Field
from keras_adrec.data._text_reader import LineFormat
from keras_adrec.data._text_reader import text_dataset
from keras_adrec.data.schema import AVAZU_COLUMNS
from keras_adrec.data.schema import AVAZU_SCHEMA

_TOKEN_PATTERN = "[^,]*"
_HOUR_PATTERN = "[0-9]{6}(?:[01][0-9]|2[0-3])"


def _parse_avazu(lines):
    """Valid Avazu lines [B] -> `(raw_features, label)`."""
    num_categorical = AVAZU_SCHEMA.num_categorical
    record_defaults = [
        tf.constant([], tf.float32),  # click
        tf.constant([], tf.string),  # hour
    ] + [tf.constant([""], tf.string)] * num_categorical
    columns = tf.io.decode_csv(
        lines,
        record_defaults=record_defaults,
        field_delim=",",
        use_quote_delim=False,
        select_cols=list(range(1, len(AVAZU_COLUMNS))),
    )
    click, hour = columns[0], columns[1]
    hour_of_day = tf.strings.to_number(
        tf.strings.substr(hour, 6, 2), out_type=tf.float32
    )
    features = {
        "dense": tf.expand_dims(hour_of_day, 1),
        "categorical": tf.stack(columns[2:], axis=1),
    }
    return features, tf.expand_dims(click, 1)


AVAZU_FORMAT = LineFormat(
    schema=AVAZU_SCHEMA,
    fields=(
        [
            Field("id", _TOKEN_PATTERN, "expected an id"),
            Field("click", "[01]", "expected 0 or 1"),
            Field("hour", _HOUR_PATTERN, "expected YYMMDDHH with HH 00-23"),
        ]
        + [
            Field(name, _TOKEN_PATTERN, "expected a token")
            for name in AVAZU_SCHEMA.categorical_names
        ]
    ),
    delimiter=",",
    delimiter_name="comma",
    header=AVAZU_COLUMNS,
    parse=_parse_avazu,
)


def avazu_dataset(
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
    """Stream Avazu CSV files as a `tf.data.Dataset`.

    The arguments, errors and split semantics are those of
    `keras_adrec.data.criteo_dataset`; line numbers in messages count the
    header as line 1. A file whose first line is not the Avazu header
    raises `DataFormatError` at construction.

    Returns:
        A `tf.data.Dataset` of `(raw_features, label)` where
        `raw_features = {"dense": float32 [B, 1] (hour of day),
        "categorical": tf.string [B, 21]}` and `label` (click) is
        float32 [B, 1]. `dataset.read_stats` is its `ReadStats`.

    Example:

    ```python
    ds = keras_adrec.data.avazu_dataset("train.csv", 128, split="train")
    ```
    """
    return text_dataset(
        AVAZU_FORMAT,
        paths,
        batch_size,
        on_bad_lines=on_bad_lines,
        split=split,
        val_fraction=val_fraction,
        split_mode=split_mode,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        repeat=repeat,
        drop_remainder=drop_remainder,
        num_parallel_files=num_parallel_files,
        stats=stats,
    )
