"""Choosing a reader by kind: `make_dataset("criteo", path, ...)`.

The command line names data as `KIND:PATH` (`--data criteo:train.txt`);
`make_dataset` maps the kind to its reader through one table, and
`make_train_val_datasets` builds the training and validation streams, from
one path (a split) or from separate validation files.
"""

from keras_adrec.data.avazu import avazu_dataset
from keras_adrec.data.criteo import criteo_dataset
from keras_adrec.data.schema import AVAZU_SCHEMA
from keras_adrec.data.schema import CRITEO_SCHEMA

READERS = {
    "criteo": (criteo_dataset, CRITEO_SCHEMA),
    "avazu": (avazu_dataset, AVAZU_SCHEMA),
}
"""Kind -> (reader function, `DatasetSchema`)."""


def _reader(kind):
    if kind not in READERS:
        raise ValueError(
            f"Unknown data kind {kind!r}. Expected one of {sorted(READERS)}."
        )
    return READERS[kind]


def schema_for(kind):
    """The `DatasetSchema` of data of `kind` ("criteo" or "avazu")."""
    return _reader(kind)[1]


def make_dataset(kind, paths, batch_size, **kwargs):
    """Read data of `kind` with its reader.

    Args:
        kind: str. "criteo" or "avazu" (a key of `READERS`).
        paths: the reader's `paths`.
        batch_size: int.
        **kwargs: the reader's other arguments (`on_bad_lines`, `split`,
            `val_fraction`, `split_mode`, `seed`, `shuffle_buffer`,
            `repeat`, `drop_remainder`, `num_parallel_files`, `stats`).

    Returns:
        The reader's `tf.data.Dataset` of `(raw_features, label)`.

    Example:

    ```python
    ds = keras_adrec.data.make_dataset("criteo", "train.txt", 128)
    ```
    """
    reader, _ = _reader(kind)
    return reader(paths, batch_size, **kwargs)


def make_train_val_datasets(
    kind,
    train_paths,
    batch_size,
    val_paths=None,
    val_fraction=0.2,
    split_mode="time",
    seed=0,
    val_batch_size=None,
    **kwargs,
):
    """Training and validation datasets of raw batches.

    Args:
        kind: str. "criteo" or "avazu".
        train_paths: paths of the training data (or of all data when
            `val_paths` is None).
        batch_size: int. Training batch size.
        val_paths: paths of separate validation data, or None to split
            `train_paths` (see `keras_adrec.data.splits`). Defaults to None.
        val_fraction: float. Validation share when splitting.
            Defaults to `0.2`.
        split_mode: "time" or "random". Defaults to `"time"`.
        seed: int. Random-split key and shuffle seed. Defaults to `0`.
        val_batch_size: int or None. Defaults to `batch_size`.
        **kwargs: reader arguments for both datasets (`on_bad_lines`,
            `num_parallel_files`, `stats`); `shuffle_buffer`, `repeat` and
            `drop_remainder` apply to the training dataset only.

    Returns:
        `(train_dataset, val_dataset)`.
    """
    val_batch_size = val_batch_size or batch_size
    shared = {
        k: kwargs[k]
        for k in ("on_bad_lines", "num_parallel_files", "stats")
        if k in kwargs
    }
    if val_paths is None:
        split_args = {
            "val_fraction": val_fraction,
            "split_mode": split_mode,
            "seed": seed,
        }
        train = make_dataset(
            kind,
            train_paths,
            batch_size,
            split="train",
            **split_args,
            **kwargs,
        )
        val = make_dataset(
            kind,
            train_paths,
            val_batch_size,
            split="val",
            **split_args,
            **shared,
        )
        return train, val
    train = make_dataset(kind, train_paths, batch_size, seed=seed, **kwargs)
    val = make_dataset(kind, val_paths, val_batch_size, **shared)
    return train, val
