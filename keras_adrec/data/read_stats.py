"""Counters a reader keeps while it streams: the malformed lines it skipped."""

import logging

import tensorflow as tf

logger = logging.getLogger("keras_adrec.data")


class ReadStats:
    """Count of malformed lines a reader skipped (`on_bad_lines="skip"`).

    Every reader attaches one to the dataset it returns, as
    `dataset.read_stats` (it also accepts one through `stats=`, which
    survives further `map`/`batch` calls on the dataset). The count is
    cumulative over all passes (epochs) since the dataset was built and
    is readable at any time, e.g. after iteration. While reading, the first
    `max_reported` skipped lines are described on stderr, and a summary
    line follows each full pass that skipped any line.

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
    def skipped_lines(self):
        """int. Malformed lines skipped so far."""
        if self._skipped is None:
            return 0
        return int(self._skipped.numpy())

    def reset(self):
        """Set the count back to zero."""
        if self._skipped is not None:
            self._skipped.assign(0)

    def log_summary(self, what="data"):
        """Log (logger "keras_adrec.data", WARNING) the count, if non-zero."""
        if self.skipped_lines:
            logger.warning(
                "Skipped %d malformed lines of %s.", self.skipped_lines, what
            )
        return self.skipped_lines

    def __repr__(self):
        return f"ReadStats(skipped_lines={self.skipped_lines})"
