"""Reader for Criteo Kaggle / Terabyte click logs (TSV, plain or gzip).

Format (no header), one impression per line, 40 TAB-separated fields:

| field     | content                                | raw feature             |
|-----------|----------------------------------------|-------------------------|
| label     | `0` or `1`                             | label, float32 [B, 1]   |
| I1..I13   | integer count, may be empty or negative| dense float32, NaN if   |
|           |                                        | empty, value kept as is |
| C1..C26   | 8 hexadecimal digits, may be empty     | categorical tf.string,  |
|           |                                        | "" if empty             |

Validation is strict and nothing is coerced: a count must match
`-?[0-9]{1,18}` (so "1.5", "12abc", "+3", " 4" are errors), a category
`[0-9a-fA-F]{8}`, a label `0|1`, and a line must have exactly 40 fields.
Dense values are float32 (counts above 2**24 are rounded, as in float32
DLRM inputs); `FeaturePreprocessor` applies DLRM's `log(max(x, 0) + 1)`.
"""

import tensorflow as tf

from keras_adrec.data._text_reader import Field
from keras_adrec.data._text_reader import LineFormat
from keras_adrec.data._text_reader import text_dataset
from keras_adrec.data.schema import CRITEO_SCHEMA

_COUNT_PATTERN = "(?:-?[0-9]{1,18})?"
_HEX_PATTERN = "(?:[0-9a-fA-F]{8})?"


def _parse_criteo(lines):
    """Valid Criteo lines [B] -> `(raw_features, label)`."""
    nan = float("nan")
    record_defaults = (
        [tf.constant([], tf.float32)]
        + [tf.constant([nan], tf.float32)] * CRITEO_SCHEMA.num_dense
        + [tf.constant([""], tf.string)] * CRITEO_SCHEMA.num_categorical
    )
    columns = tf.io.decode_csv(
        lines,
        record_defaults=record_defaults,
        field_delim="\t",
        use_quote_delim=False,
    )
    num_dense = CRITEO_SCHEMA.num_dense
    features = {
        "dense": tf.stack(columns[1 : 1 + num_dense], axis=1),
        "categorical": tf.stack(columns[1 + num_dense :], axis=1),
    }
    return features, tf.expand_dims(columns[0], 1)


CRITEO_FORMAT = LineFormat(
    schema=CRITEO_SCHEMA,
    fields=(
        [Field("label", "[01]", "expected 0 or 1")]
        + [
            Field(name, _COUNT_PATTERN, "expected an integer count or empty")
            for name in CRITEO_SCHEMA.dense_names
        ]
        + [
            Field(name, _HEX_PATTERN, "expected 8 hex digits or empty")
            for name in CRITEO_SCHEMA.categorical_names
        ]
    ),
    delimiter="\t",
    delimiter_name="tab",
    parse=_parse_criteo,
)


def criteo_dataset(
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
    """Stream Criteo Kaggle / Terabyte TSV files as a `tf.data.Dataset`.

    Args:
        paths: str, os.PathLike or list of them. Files (plain or gzip,
            detected by content), directories of day files (non-hidden
            files in natural name order: `day_0`, `day_1`, ..., `day_23`),
            or glob patterns. The order given is the time order.
        batch_size: int. Rows per batch.
        on_bad_lines: `"error"` or `"skip"`. With `"error"`, the first
            malformed line stops iteration with a
            `tf.errors.InvalidArgumentError` whose message reads
            "DataFormatError: FILE, line N, column C: DEFECT" (convert it
            with `DataFormatError.from_exception` or
            `raise_data_format_errors()`). With `"skip"`, malformed lines
            are dropped and counted in `dataset.read_stats` (a `ReadStats`)
            and described on stderr. Defaults to `"error"`.
        split: None (all rows), `"train"` or `"val"`. Defaults to None.
        val_fraction: float. Share of rows for `"val"`. Defaults to `0.2`.
        split_mode: `"time"` (the last `val_fraction` of rows, in file
            order, is validation; one line-counting pass at construction)
            or `"random"` (a seeded hash per row). See
            `keras_adrec.data.splits`. Defaults to `"time"`.
        seed: int. Key of the random split and seed of the shuffle.
            Defaults to `0`.
        shuffle_buffer: int. If positive, rows are shuffled within a
            buffer of this many lines (per file stream). Defaults to `0`:
            rows come in file order.
        repeat: bool. Repeat the data forever. Defaults to `False`.
        drop_remainder: bool. Drop the last partial batch of each pass.
            Defaults to `False`.
        num_parallel_files: int. Files read at once, their batches
            interleaved. `1` keeps the exact time order. Defaults to `1`.
        stats: a `ReadStats` to count skipped lines in, or None for a new
            one. Defaults to None.

    Returns:
        A `tf.data.Dataset` of `(raw_features, label)` where
        `raw_features = {"dense": float32 [B, 13] (NaN where empty),
        "categorical": tf.string [B, 26] ("" where empty)}` and
        `label` is float32 [B, 1]. `dataset.read_stats` is its `ReadStats`.

    Raises:
        FileNotFoundError: a path is missing, or a directory or pattern
            holds no files.
        DataFormatError: a file is empty.
        ValueError: an argument is invalid, or the requested split is
            empty.

    Example:

    ```python
    train = keras_adrec.data.criteo_dataset(
        "train.txt", 128, split="train", val_fraction=0.2
    )
    preprocessor = keras_adrec.data.FeaturePreprocessor.fit(
        train, keras_adrec.data.CRITEO_SCHEMA
    )
    train = keras_adrec.data.preprocess(train, preprocessor)
    ```
    """
    return text_dataset(
        CRITEO_FORMAT,
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
