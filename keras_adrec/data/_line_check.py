"""Checking a batch of text lines: the per-batch map of the text pipeline.

`LineCheck` validates every line of a batch with one RE2 full match, applies
a random split, raises on (or skips and counts) malformed lines, and parses
the rest; `describe_lines` names a bad line's first defect (column, value);
`pass_tail` ends each pass, failing a pass that yielded no row.
"""

import sys

import tensorflow as tf

from keras_adrec.data import splits as splits_lib
from keras_adrec.data.errors import graph_message

_VALUE_ECHO_BYTES = 40


class LineCheck:
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


def pass_tail(line_format, stats, on_bad_lines, rows_in_pass, where, split):
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
