"""Vocabularies of categorical columns: counting them, and their files.

`count_vocabularies` streams a reader's batches once and keeps the values
seen at least `min_count` times; `FeaturePreprocessor` fits with it and
saves each vocabulary as one text file, one value a line.
"""

import re

import numpy as np
import tensorflow as tf

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def count_vocabularies(
    dataset,
    num_categorical,
    min_frequency=1,
    column_names=None,
    return_rows=False,
):
    """Per-column token vocabularies of a dataset of raw batches.

    Counts in-graph (`tf.unique_with_counts` into a `MutableHashTable` per
    column, inside `Dataset.reduce`): memory grows with the number of
    distinct tokens, not with the rows.

    Args:
        dataset: finite `tf.data.Dataset` of raw batches (or of
            `(raw_features, label)`).
        num_categorical: int. The number of categorical columns.
        min_frequency: int. Minimum count for a token to be kept.
        column_names: optional list of the columns' names, used in errors.
        return_rows: bool. Also return the number of rows read.

    Returns:
        A list (one per column) of token lists (str): tokens counted at
        least `min_frequency` times, by descending count, ties by token;
        with `return_rows=True`, `(vocabularies, rows)`.

    Raises:
        ValueError: a kept token is not UTF-8 text (a Parquet binary
            column can hold any bytes; vocabularies are text).
    """
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "Cannot fit on an infinite dataset: build the training dataset "
            "with `repeat=False`."
        )
    spec = dataset.element_spec
    if isinstance(spec, tuple):
        dataset = dataset.map(lambda features, *_: features)
        spec = dataset.element_spec
    shape = spec["categorical"].shape
    if shape[-1] is not None and shape[-1] != num_categorical:
        raise ValueError(
            f"Expected {num_categorical} categorical columns, the dataset "
            f"has {shape[-1]}."
        )
    tables = [
        tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, 0)
        for _ in range(num_categorical)
    ]

    def update(rows, features):
        categorical = features["categorical"]
        for i, table in enumerate(tables):
            tokens, _, counts = tf.unique_with_counts(categorical[:, i])
            table.insert(
                tokens, table.lookup(tokens) + tf.cast(counts, tf.int64)
            )
        return rows + tf.shape(categorical, out_type=tf.int64)[0]

    rows = int(dataset.reduce(tf.constant(0, tf.int64), update))
    vocabularies = []
    for index, table in enumerate(tables):
        tokens, counts = (t.numpy() for t in table.export())
        kept = counts >= min_frequency
        tokens, counts = tokens[kept], counts[kept]
        # Descending count, then ascending token bytes.
        order = np.lexsort((tokens.astype(bytes), -counts))
        vocabulary = []
        for token in tokens[order]:
            try:
                vocabulary.append(token.decode("utf-8"))
            except UnicodeDecodeError as error:
                name = (
                    column_names[index]
                    if column_names is not None
                    else f"number {index}"
                )
                raise ValueError(
                    f"Categorical column {name} holds a token that is not "
                    f"UTF-8 text: {token[:32]!r} (byte {error.start}). "
                    "Vocabularies are text, saved in the model's config: "
                    "store such ids as text (for example hex), or use "
                    "hashing (`max_index_range`), which takes any bytes."
                ) from None
        vocabularies.append(vocabulary)
    if return_rows:
        return vocabularies, rows
    return vocabularies


def vocabulary_file_names(schema):
    """One file name per categorical column: `vocabulary_00_C1.txt`, ..."""
    names = []
    for i, name in enumerate(schema.categorical_names):
        suffix = f"_{name}" if _SAFE_NAME.match(name) else ""
        names.append(f"vocabulary_{i:02d}{suffix}.txt")
    return names


def write_vocabulary(path, vocabulary):
    """Write `vocabulary` to `path`, one token a line (UTF-8)."""
    for token in vocabulary:
        if "\n" in token or "\r" in token:
            raise ValueError(
                f"Token {token!r} holds a line break and cannot be saved "
                "in a vocabulary file."
            )
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(token + "\n" for token in vocabulary))


def read_vocabulary(path):
    """The tokens `write_vocabulary` wrote to `path`, in order."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        raise ValueError(f"{path}: the last token has no line end.")
    return text.split("\n")[:-1]
