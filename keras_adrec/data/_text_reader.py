"""The streaming pipeline shared by the delimited-text readers.

A format is a list of fields, each with a regular expression, plus a
function that turns valid lines into `(raw_features, label)`. The pipeline:

    files (time order) -> per file: TextLineDataset (gzip or plain,
    streamed) -> skip header -> number rows -> [time-split range]
    -> [shuffle] -> batch of lines
    -> interleave files (`num_parallel_files` at a time)
    -> map, parallel: validate every line with one RE2 full match,
       [random-split mask], raise or skip bad lines, parse the valid lines
       with one `tf.io.decode_csv`
    -> rebatch to `batch_size` -> [repeat] -> prefetch

Nothing is read into memory beyond the tf.data buffers, and per-line work is
vectorised over the batch.
"""

import dataclasses
from typing import Callable

import tensorflow as tf

from keras_adrec.data import splits as splits_lib
from keras_adrec.data._files import UTF8_BOM
from keras_adrec.data._files import compression_type
from keras_adrec.data._files import count_lines
from keras_adrec.data._files import has_utf8_bom
from keras_adrec.data._files import is_gzip
from keras_adrec.data._files import read_first_lines
from keras_adrec.data._files import resolve_files
from keras_adrec.data._line_check import LineCheck
from keras_adrec.data._line_check import pass_tail
from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.read_stats import ReadStats
from keras_adrec.data.schema import DatasetSchema

ON_BAD_LINES = ("error", "skip")
_READ_BUFFER_BYTES = 1024 * 1024
# Lines parsed per map call: large batches amortise the per-op overhead;
# `rebatch` then cuts them to `batch_size`.
_MIN_PARSE_BATCH = 1024


@dataclasses.dataclass(frozen=True)
class Field:
    """One delimited field: its name, RE2 pattern and what it should be."""

    name: str
    pattern: str
    expectation: str


@dataclasses.dataclass(frozen=True)
class LineFormat:
    """A delimited line format.

    Attributes:
        schema: the `DatasetSchema` the parse function yields.
        fields: list of `Field`, in line order.
        delimiter: one character.
        delimiter_name: e.g. "tab", for messages.
        header: None, or the exact list of column names of a header line.
        parse: function of valid lines (tf.string [B]) returning
            `(raw_features, label)`.
    """

    schema: DatasetSchema
    fields: list
    delimiter: str
    delimiter_name: str
    header: list = None
    parse: Callable = None

    @property
    def header_lines(self):
        return 0 if self.header is None else 1

    @property
    def line_pattern(self):
        return self.delimiter.join(f"(?:{f.pattern})" for f in self.fields)


def validate_reader_args(batch_size, on_bad_lines, shuffle_buffer, parallel):
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(
            "`batch_size` must be a positive int. "
            f"Received: batch_size={batch_size!r}"
        )
    if on_bad_lines not in ON_BAD_LINES:
        raise ValueError(
            f"`on_bad_lines` must be one of {ON_BAD_LINES}. "
            f"Received: on_bad_lines={on_bad_lines!r}"
        )
    if not isinstance(shuffle_buffer, int) or shuffle_buffer < 0:
        raise ValueError(
            "`shuffle_buffer` must be a non-negative int. "
            f"Received: shuffle_buffer={shuffle_buffer!r}"
        )
    if not isinstance(parallel, int) or parallel <= 0:
        raise ValueError(
            "`num_parallel_files` must be a positive int. "
            f"Received: num_parallel_files={parallel!r}"
        )


def text_dataset(
    line_format,
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
    """Build the dataset; see `criteo_dataset` for the arguments."""
    validate_reader_args(
        batch_size, on_bad_lines, shuffle_buffer, num_parallel_files
    )
    splits_lib.validate_split_args(split, val_fraction, split_mode, seed)
    files = resolve_files(paths)
    for path in files:
        _check_file_start(line_format, path)
        if is_gzip(path):
            # TextLineDataset stops silently where a gzip stream breaks:
            # decompress once here (remembered) to find a truncated file.
            count_lines(path)
    stats = stats if stats is not None else ReadStats()
    where = _describe_files(files)

    ranges = [(0, -1)] * len(files)
    if split is not None and split_mode == "time":
        rows = [count_lines(p) - line_format.header_lines for p in files]
        ranges = splits_lib.time_split_ranges(rows, val_fraction, split)
        if sum(count for _, count in ranges) == 0:
            raise DataFormatError(
                where,
                None,
                f"the {split!r} split is empty: {sum(rows)} data rows with "
                f"val_fraction={val_fraction}; use more data or another "
                "val_fraction",
            )
    active = [i for i, (_, count) in enumerate(ranges) if count != 0]

    file_paths = tf.constant(files)
    compressions = tf.constant([compression_type(p) for p in files])
    # A byte order mark before a header goes with the skipped header; one
    # before the first data row is dropped from it.
    first_row_boms = tf.constant(
        [line_format.header_lines == 0 and has_utf8_bom(p) for p in files]
    )
    parse_batch = max(batch_size, _MIN_PARSE_BATCH)
    header_lines = line_format.header_lines

    @tf.autograph.experimental.do_not_convert
    def read_file(file_number, start, count):
        path = tf.gather(file_paths, file_number)
        lines = tf.data.TextLineDataset(
            path,
            compression_type=tf.gather(compressions, file_number),
            buffer_size=_READ_BUFFER_BYTES,
        )
        rows = lines.skip(header_lines).enumerate().skip(start).take(count)
        if shuffle_buffer:
            rows = rows.shuffle(shuffle_buffer, seed=seed)
        rows = rows.batch(parse_batch)
        has_bom = tf.gather(first_row_boms, file_number)
        return rows.map(
            lambda index, text: (
                file_number,
                index,
                _drop_first_row_bom(has_bom, index, text),
            )
        )

    plan = tf.data.Dataset.from_tensor_slices(
        (
            tf.constant(active, tf.int64),
            tf.constant([ranges[i][0] for i in active], tf.int64),
            tf.constant([ranges[i][1] for i in active], tf.int64),
        )
    )
    cycle = min(num_parallel_files, len(active))
    parallel = {"num_parallel_calls": cycle, "deterministic": True}
    dataset = plan.interleave(
        read_file,
        cycle_length=cycle,
        block_length=1,
        **(parallel if cycle > 1 else {}),
    )

    with tf.init_scope():
        # Rows yielded in the pass under way: a full pass without any is
        # an error (every line skipped, or an empty random split).
        rows_in_pass = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="rows_in_pass"
        )
    check = LineCheck(
        line_format,
        file_paths,
        on_bad_lines,
        split,
        split_mode,
        val_fraction,
        seed,
        stats,
        rows_in_pass,
    )
    dataset = dataset.map(
        check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.concatenate(
        pass_tail(line_format, stats, on_bad_lines, rows_in_pass, where, split)
    )
    dataset = dataset.rebatch(batch_size, drop_remainder=drop_remainder)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.read_stats = stats
    return dataset


def _drop_first_row_bom(has_bom, index, text):
    """`text` (a batch of lines) without the byte order mark of row 0."""

    def drop():
        stripped = tf.strings.substr(text, len(UTF8_BOM), -1)
        return tf.where(tf.equal(index, 0), stripped, text)

    first = tf.logical_and(has_bom, tf.reduce_any(tf.equal(index, 0)))
    return tf.cond(first, drop, lambda: text)


def _describe_files(files):
    """The files of a dataset, for messages: the first, and how many more."""
    if len(files) == 1:
        return files[0]
    return f"{files[0]} (and {len(files) - 1} more files)"


def _check_file_start(line_format, path):
    """Construction-time checks: not empty, header right, has data rows."""
    wanted = line_format.header_lines + 1
    lines = read_first_lines(path, wanted)
    if not lines:
        raise DataFormatError(path, None, "the file is empty")
    if line_format.header is not None:
        found = lines[0].split(line_format.delimiter)
        if found != list(line_format.header):
            expected = line_format.delimiter.join(line_format.header)
            raise DataFormatError(
                path,
                1,
                f"the header does not match the {line_format.schema.name} "
                f"format: expected {expected!r}, found {lines[0][:300]!r}",
            )
    if len(lines) < wanted:
        raise DataFormatError(path, None, "the file has no data rows")
