"""Checks that keep a wrong run from looking finished.

- `strict_metrics` / `strict_json`: `metrics.json` is strict JSON; a
  non-finite number (NaN, infinity) is written as null and named in the
  metrics' `"warnings"` list.
- `check_summary`: a run that trained no step is an error
  (`RunCheckError`); validation labels of one class (AUC undefined) are a
  warning. `LabelCounter` / `label_warnings`: training labels of one class
  are a warning.
- `check_validation_overlap`: validation files that are the training files
  (same resolved path, or same content) are an error
  (`ValidationOverlapError`); validation rows that also occur in the
  training files are a warning (checked line by line while the training
  files are small enough to read again quickly).

Warnings go into the metrics' `"warnings"` list; `adrec` prints each one
as `adrec: warning: ...`.
"""

import gzip
import hashlib
import json
import math
import pathlib

import numpy as np
import tensorflow as tf

from keras_adrec.data import resolve_files
from keras_adrec.training.run_folder import ModelDirectoryError

WARNINGS_KEY = "warnings"

# The row-overlap check reads the training files again; above this many
# bytes it is skipped (the file-level checks still run).
ROW_CHECK_MAX_BYTES = 256 * 1024 * 1024
# Validation rows hashed for the row-overlap check.
ROW_CHECK_MAX_ROWS = 100_000
_GZIP_MAGIC = b"\x1f\x8b"


class RunCheckError(ModelDirectoryError):
    """A run that would look finished but is wrong (exit status 1)."""


class ValidationOverlapError(RunCheckError):
    """The validation data is the training data (exit status 1)."""


def add_warning(metrics, message):
    """Append `message` to `metrics["warnings"]` (once)."""
    warnings = metrics.setdefault(WARNINGS_KEY, [])
    if message not in warnings:
        warnings.append(message)
    return metrics


def strict_metrics(metrics):
    """A copy of `metrics` whose non-finite floats are None, each named
    in `"warnings"`."""
    found = []

    def clean(value, name):
        if isinstance(value, float) and not math.isfinite(value):
            found.append(f"{name} is {value} (not finite): written as null")
            return None
        if isinstance(value, dict):
            return {
                k: clean(v, f"{name}.{k}" if name else str(k))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [clean(v, f"{name}[{i}]") for i, v in enumerate(value)]
        return value

    result = clean(dict(metrics), "")
    if WARNINGS_KEY in metrics:
        result[WARNINGS_KEY] = list(metrics[WARNINGS_KEY])
    for message in found:
        add_warning(result, message)
    return result


def strict_json(metrics, indent=2):
    """`strict_metrics(metrics)` as JSON text without NaN or Infinity."""
    return json.dumps(strict_metrics(metrics), indent=indent, allow_nan=False)


def check_summary(summary):
    """Check a training run's summary (`metrics.json`) before it is saved.

    Args:
        summary: dict with `steps` and the validation `auc` / `logloss`.

    Returns:
        `summary`, with `"warnings"` added for validation labels of one
        class (their AUC becomes None).

    Raises:
        RunCheckError: no training step ran.
    """
    if summary.get("steps") == 0:
        raise RunCheckError(
            "The run trained 0 steps (no training batches), so no model was "
            "saved; check the training data and the epochs."
        )
    auc = summary.get("auc")
    logloss = summary.get("logloss")
    auc_undefined = auc is None or (isinstance(auc, float) and math.isnan(auc))
    if auc_undefined and logloss is not None and math.isfinite(logloss):
        summary["auc"] = None
        add_warning(
            summary,
            "the validation labels are all one class, so the AUC is "
            "undefined (written as null); validate on rows holding both "
            "clicks and non-clicks",
        )
    return summary


def label_warnings(labels, split):
    """Warnings for labels (an array of 0/1) of one class in `split`."""
    labels = np.asarray(labels).reshape(-1)
    return count_warnings(int(labels.size), int((labels > 0.5).sum()), split)


def count_warnings(rows, positives, split):
    """Warnings for `rows` labels of which `positives` are clicks."""
    if rows and (positives == 0 or positives == rows):
        kind = "clicks" if positives else "non-clicks"
        return [
            f"the {split} labels are all {kind} ({rows} rows): the model "
            "cannot learn to rank from them"
        ]
    return []


class LabelCounter:
    """Counts the labels of a streamed `(features, label)` dataset while a
    run trains on it, for `warnings()` after training (no extra pass).

    Example:

    ```python
    counter = LabelCounter()
    model.fit(counter.watch(train_ds))
    counter.warnings("training")  # [] or ["the training labels are ..."]
    ```
    """

    def __init__(self):
        self.rows = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.positives = tf.Variable(0, dtype=tf.int64, trainable=False)

    def watch(self, dataset):
        """`dataset`, counting each batch's labels as it is read."""

        def count(features, label):
            clicks = tf.cast(tf.reshape(label, [-1]) > 0.5, tf.int64)
            with tf.control_dependencies(
                [
                    self.rows.assign_add(tf.size(clicks, out_type=tf.int64)),
                    self.positives.assign_add(tf.reduce_sum(clicks)),
                ]
            ):
                return features, tf.identity(label)

        return dataset.map(count)

    def warnings(self, split):
        return count_warnings(
            int(self.rows.numpy()), int(self.positives.numpy()), split
        )


def _digest(path):
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def check_validation_overlap(
    train_paths, val_paths, flag="--val-data", header=False
):
    """Refuse validation files that are training files; count shared rows.

    Args:
        train_paths, val_paths: data paths (files, folders, patterns).
        flag: the flag of `val_paths`, for the message.
        header: bool. The files start with a header line (not a row).

    Returns:
        A list of warnings (validation rows found in the training files).

    Raises:
        ValidationOverlapError: a validation file is a training file, by
            resolved path or by content.
    """
    train = [pathlib.Path(p) for p in resolve_files(train_paths)]
    val = [pathlib.Path(p) for p in resolve_files(val_paths)]
    sizes = {}
    for path in train:
        sizes.setdefault(path.stat().st_size, []).append(path)
    digests = {}
    for path in val:
        for other in train:
            if path.resolve() == other.resolve():
                raise ValidationOverlapError(
                    f"{flag} {path} is the training file {other}: its AUC "
                    "would measure memory, not ranking; validate on other "
                    "rows"
                )
        for other in sizes.get(path.stat().st_size, ()):
            if other not in digests:
                digests[other] = _digest(other)
            if _digest(path) == digests[other]:
                raise ValidationOverlapError(
                    f"{flag} {path} has the same content as the training "
                    f"file {other}: its AUC would measure memory, not "
                    "ranking; validate on other rows"
                )
    if sum(p.stat().st_size for p in train) > ROW_CHECK_MAX_BYTES:
        return []
    return _row_overlap(train, val, flag, header)


def _lines(path, header):
    with open(path, "rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as f:
        if header:
            next(f, None)
        for line in f:
            line = line.rstrip(b"\r\n")
            if line:
                yield line


def _row_overlap(train, val, flag, header):
    hashes = set()
    rows = 0
    for path in val:
        for line in _lines(path, header):
            hashes.add(hashlib.blake2b(line, digest_size=16).digest())
            rows += 1
            if rows >= ROW_CHECK_MAX_ROWS:
                break
        if rows >= ROW_CHECK_MAX_ROWS:
            break
    shared = set()
    for path in train:
        for line in _lines(path, header):
            digest = hashlib.blake2b(line, digest_size=16).digest()
            if digest in hashes:
                shared.add(digest)
    if not shared:
        return []
    checked = f"the first {rows}" if rows >= ROW_CHECK_MAX_ROWS else "the"
    return [
        f"{len(shared)} distinct rows of {checked} {rows} {flag} rows also "
        "occur in the training data: the validation AUC is optimistic"
    ]
