"""Reader for Parquet files with a label, dense and categorical columns.

Files are streamed record batch by record batch
(`pyarrow.parquet.ParquetFile.iter_batches`), never read whole, and yield the
same raw batches as the text readers:

| column      | accepted Parquet types               | raw feature          |
|-------------|--------------------------------------|----------------------|
| label       | integer, floating point or boolean;  | float32 [B, 1]       |
|             | no nulls; values 0 or 1              |                      |
| dense       | integer, floating point or boolean   | float32, NaN if null |
| categorical | string, binary, integer, or a        | tf.string, "" if     |
|             | dictionary of those                  | null (ints: decimal) |

Columns are found by name through a `DatasetSchema`; other columns are not
read. Defects raise `DataFormatError` naming the file and column: a missing
column or a wrong type at construction (from the file footers), a null or
non-0/1 label at construction when the row-group statistics show it, else
while iterating (then inside a `tf.errors.InvalidArgumentError`, as with
the text readers; `raise_data_format_errors()` converts it). Its `line` is
the 1-based row number in the file.
"""

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import tensorflow as tf

from keras_adrec.data._files import natural_key
from keras_adrec.data._files import resolve_files
from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.errors import NoDataFilesError
from keras_adrec.data.schema import CRITEO_SCHEMA

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")


def parquet_dataset(
    paths,
    batch_size,
    schema=CRITEO_SCHEMA,
    drop_remainder=False,
    repeat=False,
    read_batch_size=65536,
):
    """Stream Parquet files as a `tf.data.Dataset` of raw batches.

    Args:
        paths: str, os.PathLike or list of them. Parquet files, glob
            patterns, or directories (their `*.parquet`, `*.parq`, `*.pq`
            files in natural name order: `day_2` before `day_10`). The
            order given is the time order; rows keep file order.
        batch_size: int. Rows per batch; batches run across row groups and
            files.
        schema: `DatasetSchema`. Names of the label, dense and categorical
            columns. Defaults to `CRITEO_SCHEMA` (`label`, `I1..I13`,
            `C1..C26`).
        drop_remainder: bool. Drop the last partial batch. Defaults to
            `False`.
        repeat: bool. Repeat the data forever. Defaults to `False`.
        read_batch_size: int. Rows per record batch read from a file (the
            memory bound). Defaults to `65536`.

    Returns:
        A `tf.data.Dataset` of `(raw_features, label)`:
        `{"dense": float32 [B, num_dense] (NaN where null), "categorical":
        tf.string [B, num_categorical] ("" where null)}`, label float32
        `[B, 1]`.

    Raises:
        FileNotFoundError: a path is missing or matches no Parquet file.
        DataFormatError: a file is not Parquet, lacks a column, has a
            column of the wrong type, or its statistics show a null or
            non-0/1 label.
        ValueError: an argument is invalid.

    Example:

    ```python
    generator = keras_adrec.data.SyntheticCriteo(rows_per_day=10_000)
    paths = generator.write_parquet("/tmp/synthetic", days=[0, 1])
    dataset = keras_adrec.data.parquet_dataset(paths, batch_size=128)
    ```
    """
    for name, value in (
        ("batch_size", batch_size),
        ("read_batch_size", read_batch_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive int. Received: {name}={value!r}"
            )
    for attribute in ("label_name", "dense_names", "categorical_names"):
        if not hasattr(schema, attribute):
            raise ValueError(
                "`schema` must be a `DatasetSchema` (label_name, dense_names, "
                f"categorical_names). Received: schema={schema!r}"
            )
    files = _parquet_files(paths)
    for path in files:
        _check_file(path, schema)

    num_dense = len(schema.dense_names)
    num_categorical = len(schema.categorical_names)

    def record_batches():
        for path in files:
            yield from _read_file(path, schema, read_batch_size)

    signature = (
        tf.TensorSpec([None, num_dense], tf.float32),
        tf.TensorSpec([], tf.string),
        tf.TensorSpec([num_categorical, None], tf.int64),
        tf.TensorSpec([None, 1], tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(
        record_batches, output_signature=signature
    )
    dataset = dataset.map(_to_raw_batch, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.rebatch(batch_size, drop_remainder=drop_remainder)
    if repeat:
        dataset = dataset.repeat()
    return dataset.prefetch(tf.data.AUTOTUNE)


def _parquet_files(paths):
    """Resolve `paths`; a directory contributes its Parquet files only."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for path in [os.fspath(p) for p in paths]:
        if tf.io.gfile.isdir(path):
            found = [
                os.path.join(path, name)
                for name in tf.io.gfile.listdir(path)
                if name.endswith(PARQUET_SUFFIXES) and not name.startswith(".")
            ]
            if not found:
                raise NoDataFilesError(
                    path,
                    None,
                    "the directory contains no Parquet files "
                    f"({', '.join('*' + s for s in PARQUET_SUFFIXES)})",
                )
            files.extend(sorted(found, key=natural_key))
        else:
            files.extend(resolve_files(path))
    if not files:
        raise FileNotFoundError("No data paths were given.")
    return files


def _kind_ok(kind, data_type):
    if pa.types.is_dictionary(data_type):
        return kind == "categorical" and _kind_ok(kind, data_type.value_type)
    numeric = (
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_boolean(data_type)
    )
    if kind in ("label", "dense"):
        return numeric
    return (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_binary(data_type)
        or pa.types.is_large_binary(data_type)
        or pa.types.is_integer(data_type)
    )


_EXPECTED = {
    "label": "an integer, floating point or boolean column",
    "dense": "an integer, floating point or boolean column",
    "categorical": "a string, binary or integer column",
}


def _columns(schema):
    return (
        [(schema.label_name, "label")]
        + [(name, "dense") for name in schema.dense_names]
        + [(name, "categorical") for name in schema.categorical_names]
    )


def _check_file(path, schema):
    """Footer checks: columns present with usable types, label statistics."""
    try:
        parquet_file = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataFormatError(
            path, None, f"not a readable Parquet file ({error})"
        ) from error
    arrow_schema = parquet_file.schema_arrow
    for name, kind in _columns(schema):
        index = arrow_schema.get_field_index(name)
        if index < 0:
            available = ", ".join(arrow_schema.names[:50])
            raise DataFormatError(
                path,
                None,
                f"missing {kind} column `{name}` (the file has: {available})",
                column=name,
            )
        data_type = arrow_schema.field(index).type
        if not _kind_ok(kind, data_type):
            raise DataFormatError(
                path,
                None,
                f"expected {_EXPECTED[kind]}, found type `{data_type}`",
                column=name,
            )
    if parquet_file.metadata.num_rows == 0:
        raise DataFormatError(path, None, "the file has no data rows")
    _check_label_statistics(path, parquet_file, schema.label_name)


def _check_label_statistics(path, parquet_file, label_name):
    """Fail early when the footer statistics prove a bad label."""
    metadata = parquet_file.metadata
    column = parquet_file.schema_arrow.get_field_index(label_name)
    # Arrow field index equals the Parquet leaf index for flat schemas.
    if metadata.num_columns != len(parquet_file.schema_arrow):
        return
    first_row = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        statistics = row_group.column(column).statistics
        if statistics is not None:
            if statistics.null_count:
                raise DataFormatError(
                    path,
                    None,
                    f"{statistics.null_count} null labels in rows "
                    f"{first_row + 1}..{first_row + row_group.num_rows}",
                    column=label_name,
                )
            if statistics.has_min_max:
                low, high = statistics.min, statistics.max
                if low not in (0, 1, False, True) or high not in (
                    0,
                    1,
                    False,
                    True,
                ):
                    raise DataFormatError(
                        path,
                        None,
                        f"expected labels 0 or 1, found values from {low} "
                        f"to {high} in rows {first_row + 1}.."
                        f"{first_row + row_group.num_rows}",
                        column=label_name,
                    )
        first_row += row_group.num_rows


def _read_file(path, schema, read_batch_size):
    """Yield `(dense, token_bytes, token_offsets, label)` per record batch."""
    names = [name for name, _ in _columns(schema)]
    parquet_file = pq.ParquetFile(path)
    first_row = 0
    for batch in parquet_file.iter_batches(
        batch_size=read_batch_size, columns=names
    ):
        rows = batch.num_rows
        label = label_array(path, batch.column(0), schema.label_name, first_row)
        num_dense = len(schema.dense_names)
        dense = np.empty((rows, num_dense), np.float32)
        for j in range(num_dense):
            dense[:, j] = _dense(batch.column(1 + j))
        data, offsets = _tokens(
            [
                batch.column(1 + num_dense + i)
                for i in range(len(names) - 1 - num_dense)
            ],
            rows,
        )
        yield dense, data, offsets, label
        first_row += rows


def label_array(path, column, name, first_row):
    """A 0/1 label column as float32 `[rows, 1]`; a null or another value
    raises `DataFormatError` naming the file, row and column."""
    if column.null_count:
        row = first_row + int(np.flatnonzero(column.is_null())[0]) + 1
        raise DataFormatError(path, row, "the label is null", column=name)
    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero((values != 0) & (values != 1))
    if bad.size:
        row = first_row + int(bad[0]) + 1
        raise DataFormatError(
            path,
            row,
            f"expected 0 or 1, found `{values[bad[0]]:g}`",
            column=name,
        )
    return values.astype(np.float32).reshape(-1, 1)


def _dense(column):
    """float32 values, NaN for null; counts above 2**24 round to nearest."""
    values = pc.cast(column, pa.float64())
    if values.null_count:
        values = pc.fill_null(values, float("nan"))
    return values.to_numpy(zero_copy_only=False)


def _tokens(columns, rows):
    """Categorical columns -> one bytes blob and offsets `[columns, rows+1]`.

    Each column becomes large_binary ("" for null); the blob is the columns'
    data buffers end to end, and `offsets[i]` locates column `i`'s values in
    it, so the graph cuts all tokens out with one `tf.strings.substr`.
    """
    offsets = np.empty((len(columns), rows + 1), np.int64)
    buffers = []
    start = 0
    for i, column in enumerate(columns):
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if pa.types.is_integer(column.type):
            column = pc.cast(column, pa.string())
        column = pc.cast(column, pa.large_binary())
        if column.null_count:
            column = pc.fill_null(column, pa.scalar(b"", pa.large_binary()))
        _, offset_buffer, data_buffer = column.buffers()
        column_offsets = np.frombuffer(offset_buffer, np.int64)[
            column.offset : column.offset + rows + 1
        ]
        low, high = int(column_offsets[0]), int(column_offsets[-1])
        offsets[i] = column_offsets - low + start
        if data_buffer is not None and high > low:
            buffers.append(memoryview(data_buffer)[low:high])
        start += high - low
    return b"".join(buffers), offsets


def _to_raw_batch(dense, data, offsets, label):
    starts = offsets[:, :-1]
    tokens = tf.strings.substr(data, starts, offsets[:, 1:] - starts)
    return {"dense": dense, "categorical": tf.transpose(tokens)}, label
