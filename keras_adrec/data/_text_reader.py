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
import sys
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
from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.errors import graph_message
from keras_adrec.data.read_stats import ReadStats
from keras_adrec.data.schema import DatasetSchema

ON_BAD_LINES = ("error", "skip")
_VALUE_ECHO_BYTES = 40
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
    check = _BatchCheck(
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
        _pass_tail(line_format, stats, on_bad_lines, rows_in_pass, where, split)
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


class _BatchCheck:
    """The map function: validate, split, raise or skip, parse a batch."""

    def __init__(
        self,
        line_format,
        file_paths,
        on_bad_lines,
        split,
        split_mode,
        val_fraction,
        seed,
        stats,
        rows_in_pass,
    ):
        self.format = line_format
        self.file_paths = file_paths
        self.on_bad_lines = on_bad_lines
        self.random_split = split if split_mode == "random" else None
        self.val_fraction = val_fraction
        self.seed = seed
        self.stats = stats
        self.counter = stats.variable if on_bad_lines == "skip" else None
        self.rows_in_pass = rows_in_pass

    @tf.autograph.experimental.do_not_convert
    def __call__(self, file_number, row_index, lines):
        bad = tf.logical_not(
            tf.strings.regex_full_match(lines, self.format.line_pattern)
        )
        keep = None
        if self.random_split is not None:
            keep = splits_lib.random_split_mask(
                file_number,
                row_index,
                self.val_fraction,
                self.seed,
                self.random_split,
            )
            bad = tf.logical_and(bad, keep)
        line_numbers = row_index + self.format.header_lines + 1
        file = tf.gather(self.file_paths, file_number)

        def messages(rows, prefix):
            """Descriptions of the lines `rows`, one per line."""
            columns, defects = describe_lines(
                self.format, tf.gather(lines, rows)
            )
            texts = graph_message(
                file,
                tf.gather(line_numbers, rows),
                columns,
                defects,
                prefix=prefix,
            )
            return tf.strings.reduce_join(texts, separator="\n")

        any_bad = tf.reduce_any(bad)
        if self.on_bad_lines == "error":
            check = tf.cond(
                any_bad,
                lambda: tf.debugging.Assert(
                    False, [messages(tf.where(bad)[:1, 0], "DataFormatError: ")]
                ),
                tf.no_op,
            )
        else:
            # Count and describe each malformed line once, however many
            # passes (the vocabulary pass, epochs) skip it again.
            new_rows = self.stats.first_sightings(
                file, tf.gather(line_numbers, tf.where(bad)[:, 0])
            )
            new_rows = tf.gather(tf.where(bad)[:, 0], new_rows)
            num_new = tf.size(new_rows, out_type=tf.int64)
            before = self.counter.assign_add(num_new) - num_new
            unreported = self.stats.max_reported - before
            check = tf.cond(
                tf.logical_and(num_new > 0, unreported > 0),
                lambda: tf.print(
                    messages(
                        new_rows[:unreported],
                        "keras_adrec.data: skipping a malformed line: ",
                    ),
                    output_stream=sys.stderr,
                ),
                tf.no_op,
            )
            good = tf.logical_not(bad)
            keep = good if keep is None else tf.logical_and(keep, good)
        with tf.control_dependencies([check]):
            if keep is not None:
                lines = tf.boolean_mask(lines, keep)
            counted = self.rows_in_pass.assign_add(
                tf.size(lines, out_type=tf.int64)
            )
        with tf.control_dependencies([counted]):
            lines = tf.identity(lines)
        return self.format.parse(lines)


def describe_lines(line_format, lines):
    """Graph op: `(columns, defects)`, tf.string [K], for malformed lines.

    The first defect of each line: its field count, else its first field
    that does not match, else (RE2 found no field at fault) its encoding.
    Fields sharing a pattern are checked with one op.
    """
    fields = line_format.fields
    num_fields = len(fields)
    values = tf.strings.split(lines, line_format.delimiter)
    found = tf.cast(values.row_lengths(), tf.int32)
    padded = values.to_tensor(default_value="", shape=[None, num_fields])
    groups = {}
    for i, field in enumerate(fields):
        groups.setdefault(field.pattern, []).append(i)
    order = [i for indices in groups.values() for i in indices]
    field_bad = tf.concat(
        [
            tf.logical_not(
                tf.strings.regex_full_match(
                    tf.gather(padded, indices, axis=1), pattern
                )
            )
            for pattern, indices in groups.items()
        ],
        axis=1,
    )
    inverse = [order.index(i) for i in range(num_fields)]
    field_bad = tf.gather(field_bad, inverse, axis=1)
    first = tf.argmax(
        tf.cast(field_bad, tf.int32), axis=1, output_type=tf.int32
    )
    value = tf.strings.substr(
        tf.gather(padded, first, axis=1, batch_dims=1), 0, _VALUE_ECHO_BYTES
    )
    # Bytes that are not UTF-8 (or a character cut by the echo limit) would
    # make the error message itself undecodable: show them as U+FFFD.
    value = tf.strings.unicode_transcode(
        value, "UTF-8", "UTF-8", errors="replace"
    )
    field_defect = tf.strings.join(
        [
            tf.gather([f.expectation for f in fields], first),
            ", found `",
            value,
            "`",
        ]
    )
    count_defect = tf.strings.join(
        [
            f"expected {num_fields} {line_format.delimiter_name}-separated "
            "fields, found ",
            tf.strings.as_string(found),
        ]
    )
    wrong_count = tf.not_equal(found, num_fields)
    any_field = tf.reduce_any(field_bad, axis=1)
    no_field = tf.fill(tf.shape(found), "the line is not valid UTF-8 text")
    defects = tf.where(
        wrong_count, count_defect, tf.where(any_field, field_defect, no_field)
    )
    columns = tf.where(
        tf.logical_or(wrong_count, tf.logical_not(any_field)),
        "",
        tf.gather([f.name for f in fields], first),
    )
    return columns, defects


def _pass_tail(line_format, stats, on_bad_lines, rows_in_pass, where, split):
    """A dataset of no elements that closes each full pass.

    Concatenated after the parsed batches, it runs once at the end of each
    full pass, after every batch of the pass has been checked. It raises
    the `DataFormatError` "FILES: no data rows ..." when the pass yielded
    no row (every line skipped as malformed, or an empty random split),
    and, with `on_bad_lines="skip"`, prints the skip count when it grew
    since the last summary (so a second pass over the same lines is quiet).
    """
    schema = line_format.schema
    name = schema.name
    in_split = f" in the {split!r} split" if split else ""

    @tf.autograph.experimental.do_not_convert
    def summarise(_):
        checks = []
        rows = rows_in_pass.read_value()
        if on_bad_lines == "skip":
            total = stats.variable.read_value()
            grew = total > stats.summarised.read_value()
            printed = tf.cond(
                grew,
                lambda: tf.print(
                    "keras_adrec.data: skipped",
                    total,
                    f"malformed {name} lines in total (on_bad_lines='skip').",
                    output_stream=sys.stderr,
                ),
                tf.no_op,
            )
            with tf.control_dependencies([printed]):
                checks.append(stats.summarised.assign(total))
            skipped = tf.strings.join(
                ["; ", tf.strings.as_string(total), " malformed lines skipped"]
            )
        else:
            skipped = ""
        message = tf.strings.join(
            [f"DataFormatError: {where}: no data rows{in_split}", skipped]
        )
        checks.append(tf.debugging.Assert(rows > 0, [message]))
        with tf.control_dependencies(checks):
            checks = [rows_in_pass.assign(0)]
        with tf.control_dependencies(checks):
            empty = tf.zeros([0], tf.float32)
        features = {
            "dense": tf.reshape(empty, [0, schema.num_dense]),
            "categorical": tf.fill([0, schema.num_categorical], ""),
        }
        return features, tf.reshape(empty, [0, 1])

    tail = tf.data.Dataset.range(1).map(summarise)
    return tail.filter(lambda features, label: False)
