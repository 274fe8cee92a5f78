"""Counters a reader keeps while it streams: the malformed lines it skipped."""

import logging

import tensorflow as tf

logger = logging.getLogger("keras_adrec.data")


class ReadStats:
    """Count of malformed lines a reader skipped (`on_bad_lines="skip"`).

    Every reader attaches one to the dataset it returns, as
    `dataset.read_stats` (it also accepts one through `stats=`, which
    survives further `map`/`batch` calls on the dataset). It counts
    distinct lines (file and line number): a line skipped again by a
    later pass - another epoch, or the training pass after the pass that
    fitted the vocabularies - is not counted again, so `skipped_lines` is
    the number of malformed lines the data holds, however often it is
    read. It is readable at any time, e.g. after iteration. While reading,
    the first `max_reported` skipped lines are described on stderr, each
    once, and a summary line follows each full pass that skipped a line
    not seen before. Memory grows with the number of skipped lines.

    Args:
        max_reported: int. How many skipped lines are described one by one.
            Defaults to `10`.

    Example:

    ```python
    ds = keras_adrec.data.criteo_dataset(path, 128, on_bad_lines="skip")
    for features, label in ds:
        ...
    ds.read_stats.skipped_lines  # e.g. 3
    ```
    """

    def __init__(self, max_reported=10):
        if max_reported < 0:
            raise ValueError(
                "`max_reported` must be non-negative. "
                f"Received: max_reported={max_reported}"
            )
        self.max_reported = max_reported
        self._skipped = None
        self._summarised = None
        self._seen = None

    @property
    def variable(self):
        """The int64 `tf.Variable` counting skipped lines (made on demand)."""
        if self._skipped is None:
            with tf.init_scope():
                self._skipped = tf.Variable(
                    0, dtype=tf.int64, trainable=False, name="skipped_lines"
                )
        return self._skipped

    @property
    def summarised(self):
        """int64 `tf.Variable`: the count the last summary line gave."""
        if self._summarised is None:
            with tf.init_scope():
                self._summarised = tf.Variable(
                    0, dtype=tf.int64, trainable=False, name="summarised"
                )
        return self._summarised

    def _seen_table(self):
        if self._seen is None:
            with tf.init_scope():
                self._seen = tf.lookup.experimental.MutableHashTable(
                    tf.string, tf.int64, default_value=0
                )
        return self._seen

    def first_sightings(self, file, line_numbers):
        """Graph op: which skipped lines were not seen before; marks all.

        Args:
            file: scalar tf.string, the file holding the lines.
            line_numbers: int64 [K], 1-based numbers of skipped lines.

        Returns:
            int64 [M]: the positions in `line_numbers` of the lines seen
            for the first time.
        """
        table = self._seen_table()
        keys = tf.strings.join([file, "\n", tf.strings.as_string(line_numbers)])
        seen = table.lookup(keys)
        with tf.control_dependencies([seen]):
            marked = table.insert(keys, tf.ones_like(seen))
        with tf.control_dependencies([marked]):
            return tf.where(tf.equal(seen, 0))[:, 0]

    @property
    def skipped_lines(self):
        """int. Malformed lines skipped so far."""
        if self._skipped is None:
            return 0
        return int(self._skipped.numpy())

    def reset(self):
        """Set the count back to zero and forget the lines seen."""
        if self._skipped is not None:
            self._skipped.assign(0)
        if self._summarised is not None:
            self._summarised.assign(0)
        if self._seen is not None:
            self._seen.remove(self._seen.export()[0])

    def log_summary(self, what="data"):
        """Log (logger "keras_adrec.data", WARNING) the count, if non-zero."""
        if self.skipped_lines:
            logger.warning(
                "Skipped %d malformed lines of %s.", self.skipped_lines, what
            )
        return self.skipped_lines

    def __repr__(self):
        return f"ReadStats(skipped_lines={self.skipped_lines})"
