"""Stream a user's Parquet or CSV table described by a `TableSchema`.

`table_dataset(paths, batch_size, schema, file_format="parquet")` reads
file by file and record batch by record batch (`pyarrow.dataset`), never
a whole file, into `tf.data`:

- label: Parquet integer, floating point or boolean, or CSV 0/1; values
  0 or 1 -> float32 [B, 1];
- dense: integer, floating point or boolean (CSV: a number or empty)
  -> float32, NaN where null;
- categorical: string or integer (a dictionary of those) -> tf.string;
- multi_hot: Parquet list<string> or list<int64>; CSV values joined by
  `|` -> a tuple of ragged tf.string `[B, None]`, one per column;
- group: string or integer -> tf.string [B].

Raw batches are `({"dense": [B, num_dense], "categorical": [B, C],
"multi_hot": (ragged [B, None], ...), "group": [B]}, label [B, 1])`; keys of
roles the schema does not use are left out, except `dense` (a schema
without dense columns gets one zero column). Nulls: a null dense value is
NaN, a null categorical value is "" and a null list is empty; in CSV an
empty cell of a multi-hot column is an empty list and empty values
between `|` are dropped.

Defects raise `DataFormatError` naming the file and column: a missing
column or a wrong type before any row is read, a label that is not 0/1
while reading (with its 1-based row in the file; inside a
`tf.errors.InvalidArgumentError`, which `raise_data_format_errors()`
converts).
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_dataset
import tensorflow as tf

from keras_adrec.data._files import resolve_files
from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.parquet import _parquet_files
from keras_adrec.data.parquet import label_array

FILE_FORMATS = ("parquet", "csv")
MULTI_HOT_SEPARATOR = "|"

_EXPECTED = {
    "label": "an integer, floating point or boolean column",
    "dense": "an integer, floating point or boolean column",
    "categorical": "a string or integer column",
    "group": "a string or integer column",
    "multi_hot": "a list<string> or list<int64> column",
}


def table_dataset(
    paths,
    batch_size,
    schema,
    file_format="parquet",
    split=None,
    val_fraction=0.2,
    read_batch_size=65536,
):
    """Stream a table's files as a `tf.data.Dataset` of raw batches.

    Args:
        paths: str, path or list of them: files, directories (Parquet: their
            `*.parquet` files; CSV: their files) or glob patterns, in time
            order.
        batch_size: int. Rows per batch.
        schema: `keras_adrec.data.TableSchema`.
        file_format: `"parquet"` or `"csv"` (with a header line).
            Defaults to `"parquet"`.
        split: None (every row), `"train"` (the first `1 - val_fraction`
            of the rows, in file order) or `"val"` (the rest).
        val_fraction: float in (0, 1). Defaults to `0.2`.
        read_batch_size: int. Rows per record batch read from a file.
            Defaults to `65536`.

    Returns:
        A `tf.data.Dataset` of `(raw_features, label)` (see the module).

    Raises:
        DataFormatError: a column is missing or of the wrong type.
        FileNotFoundError: a path is missing.
        ValueError: an argument is invalid.
    """
    if file_format not in FILE_FORMATS:
        raise ValueError(
            f"`file_format` must be one of {FILE_FORMATS}. "
            f"Received: file_format={file_format!r}"
        )
    if split not in (None, "train", "val"):
        raise ValueError(
            f"`split` must be None, 'train' or 'val'. Received: split={split!r}"
        )
    if not 0 < val_fraction < 1:
        raise ValueError(
            "`val_fraction` must lie in (0, 1). "
            f"Received: val_fraction={val_fraction}"
        )
    if file_format == "parquet":
        files = _parquet_files(paths)
    else:
        files = resolve_files(paths)
    tables = [_open(path, schema, file_format) for path in files]
    start, stop = 0, None
    if split is not None:
        total = sum(table.count_rows() for table in tables)
        cut = int(round(total * (1 - val_fraction)))
        start, stop = (0, cut) if split == "train" else (cut, total)

    def record_batches():
        first = 0
        for path, table in zip(files, tables):
            for batch in table.to_batches(
                columns=list(schema.columns),
                batch_size=read_batch_size,
                # In file order: row numbers and the time split rely on it.
                use_threads=False,
            ):
                rows = batch.num_rows
                low = max(start - first, 0)
                high = rows if stop is None else min(stop - first, rows)
                if high > low:
                    yield _arrays(
                        path, batch.slice(low, high - low), schema, first + low
                    )
                first += rows

    num_dense = max(len(schema.dense), 1)
    signature = (
        tf.TensorSpec([None, num_dense], tf.float32),
        tf.TensorSpec([None, len(schema.categorical)], tf.string),
        tuple(
            (tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.int64))
            for _ in schema.multi_hot
        ),
        tf.TensorSpec([None], tf.string),
        tf.TensorSpec([None, 1], tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(
        record_batches, output_signature=signature
    )

    def to_raw(dense, categorical, bags, group, label):
        features = {"dense": dense, "categorical": categorical}
        if schema.multi_hot:
            features["multi_hot"] = tuple(
                tf.RaggedTensor.from_row_lengths(values, lengths)
                for values, lengths in bags
            )
        if schema.group is not None:
            features["group"] = group
        return features, label

    dataset = dataset.map(to_raw).rebatch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _open(path, schema, file_format):
    """A `pyarrow.dataset` of one file, its columns checked."""
    try:
        if file_format == "parquet":
            table = pa_dataset.dataset(path, format="parquet")
        else:
            text = {
                name: pa.string()
                for name in (
                    *schema.categorical,
                    *schema.multi_hot,
                    *([schema.group] if schema.group else []),
                )
            }
            options = pa_csv.ConvertOptions(column_types=text)
            table = pa_dataset.dataset(
                path,
                format=pa_dataset.CsvFileFormat(convert_options=options),
            )
        arrow_schema = table.schema
    except (pa.ArrowInvalid, OSError) as error:
        raise DataFormatError(
            path, None, f"not a readable {file_format} file ({error})"
        ) from error
    roles = [("label", schema.label)]
    roles += [("dense", name) for name in schema.dense]
    roles += [("categorical", name) for name in schema.categorical]
    roles += [("multi_hot", name) for name in schema.multi_hot]
    if schema.group is not None:
        roles.append(("group", schema.group))
    for role, name in roles:
        index = arrow_schema.get_field_index(name)
        if index < 0:
            available = ", ".join(arrow_schema.names[:50])
            raise DataFormatError(
                path,
                None,
                f"missing {role} column `{name}` (the file has: {available})",
                column=name,
            )
        data_type = arrow_schema.field(index).type
        if not _type_ok(role, data_type, file_format):
            raise DataFormatError(
                path,
                None,
                f"expected {_EXPECTED[role]}, found type `{data_type}`",
                column=name,
            )
    return table


def _type_ok(role, data_type, file_format):
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    numeric = (
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_boolean(data_type)
    )
    text = pa.types.is_string(data_type) or pa.types.is_large_string(data_type)
    if role == "label":
        return numeric
    if role == "dense":
        # An all-empty CSV column reads as type null: every value is NaN.
        return numeric or pa.types.is_null(data_type)
    if role in ("categorical", "group"):
        return text or pa.types.is_integer(data_type)
    if file_format == "csv":
        return text
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        value = data_type.value_type
        return (
            pa.types.is_string(value)
            or pa.types.is_large_string(value)
            or pa.types.is_integer(value)
        )
    return False


def _arrays(path, batch, schema, first_row):
    """One record batch as the generator's numpy arrays."""
    rows = batch.num_rows
    label = label_array(
        path, batch.column(schema.label), schema.label, first_row
    )
    dense = np.zeros((rows, max(len(schema.dense), 1)), np.float32)
    for j, name in enumerate(schema.dense):
        values = pc.cast(batch.column(name), pa.float64())
        dense[:, j] = pc.fill_null(values, float("nan")).to_numpy(
            zero_copy_only=False
        )
    categorical = np.empty((rows, len(schema.categorical)), object)
    for j, name in enumerate(schema.categorical):
        categorical[:, j] = _strings(batch.column(name))
    bags = tuple(_bag(batch.column(name)) for name in schema.multi_hot)
    group = (
        _strings(batch.column(schema.group))
        if schema.group is not None
        else np.full(rows, b"", object)
    )
    return dense, categorical, bags, group, label


def _strings(column):
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    column = pc.cast(column, pa.string())
    return pc.fill_null(column, "").to_numpy(zero_copy_only=False)


def _bag(column):
    """A list (or `|`-joined string) column -> `(values, row_lengths)`."""
    rows = len(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.split_pattern(pc.fill_null(column, ""), MULTI_HOT_SEPARATOR)
    flat = pc.cast(pc.list_flatten(column), pa.string())
    parents = pc.list_parent_indices(column)
    keep = pc.and_(pc.is_valid(flat), pc.not_equal(flat, ""))
    keep = pc.fill_null(keep, False)
    flat = pc.filter(flat, keep).to_numpy(zero_copy_only=False)
    parents = pc.filter(parents, keep).to_numpy(zero_copy_only=False)
    lengths = np.bincount(parents, minlength=rows).astype(np.int64)
    return flat.astype(object), lengths


def table_file_format(kind):
    """`"parquet"` or `"csv"` for a `KIND` of `KIND:PATH`."""
    kind = str(kind).lower()
    if kind not in FILE_FORMATS:
        raise ValueError(
            f"A schema file reads kinds {', '.join(FILE_FORMATS)}; "
            f"received {kind!r}."
        )
    return kind
