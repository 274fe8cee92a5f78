"""The one table of data kinds: `KIND:PATH` names, readers and schemas.

The command line and every job name data as `KIND:PATH`
(`--data criteo:train.txt`). `DATA_KINDS` maps each kind to its reader,
its schema and the task it serves (`"ranking"`: Criteo, Avazu, MovieLens;
`"sequential"`: Taobao). Everything that needs the list of kinds (the
CLI's checks, the jobs, export) reads it from here.
"""

import dataclasses
import os
from typing import Callable
from typing import Optional

from keras_adrec.data.avazu import avazu_dataset
from keras_adrec.data.criteo import criteo_dataset
from keras_adrec.data.movielens import MOVIELENS_SCHEMA
from keras_adrec.data.movielens import movielens_dataset
from keras_adrec.data.schema import AVAZU_SCHEMA
from keras_adrec.data.schema import CRITEO_SCHEMA
from keras_adrec.data.schema import DatasetSchema

TASKS = ("ranking", "sequential")


@dataclasses.dataclass(frozen=True)
class DataKind:
    """One kind of data: its name, task, reader and schema.

    Args:
        name: str. The `KIND` of `KIND:PATH`.
        task: str. `"ranking"` (rows of dense and categorical features) or
            `"sequential"` (user event histories).
        description: str. One line for help texts.
        reader: the streaming reader `reader(paths, batch_size, **kwargs)`
            of a ranking kind, or None.
        schema: the `DatasetSchema` of a ranking kind, or None.
    """

    name: str
    task: str
    description: str
    reader: Optional[Callable] = None
    schema: Optional[DatasetSchema] = None


DATA_KINDS = {
    "criteo": DataKind(
        "criteo",
        "ranking",
        "Criteo TSV (plain or gzip): a file, several, or a directory",
        criteo_dataset,
        CRITEO_SCHEMA,
    ),
    "avazu": DataKind(
        "avazu", "ranking", "Avazu CSV with header", avazu_dataset, AVAZU_SCHEMA
    ),
    "taobao": DataKind("taobao", "sequential", "Taobao UserBehavior CSV"),
    "movielens": DataKind(
        "movielens",
        "ranking",
        "MovieLens .inter ratings as clicks (rating >= 4), time-ordered",
        movielens_dataset,
        MOVIELENS_SCHEMA,
    ),
    # A user's table: its columns come from a schema file (`--schema`).
    "parquet": DataKind(
        "parquet", "ranking", "Parquet files described by --schema"
    ),
    "csv": DataKind("csv", "ranking", "CSV files described by --schema"),
}
"""Kind name -> `DataKind`."""


def kind_names(task=None):
    """Names of the data kinds, optionally of one task only."""
    return tuple(k for k, v in DATA_KINDS.items() if task in (None, v.task))


def data_kind(name, task=None):
    """The `DataKind` called `name`.

    Raises:
        ValueError: for an unknown kind, or one of another task.
    """
    kind = DATA_KINDS.get(str(name).lower())
    if kind is None or task not in (None, kind.task):
        raise ValueError(
            f"Unknown data kind {name!r}. Known kinds: "
            f"{', '.join(kind_names(task))}."
        )
    return kind


def schema_for(kind):
    """The `DatasetSchema` of a ranking kind (`"criteo"` or `"avazu"`)."""
    return data_kind(kind, task="ranking").schema


def parse_data_spec(spec, task=None):
    """Split `"KIND:PATH[,PATH...]"` into `(kind, [paths])`.

    Args:
        spec: str. A kind, a colon, and one or more comma-separated paths
            (files, directories or glob patterns).
        task: optional `"ranking"` or `"sequential"`: accept only kinds of
            that task.

    Returns:
        `(kind_name, paths)`.

    Raises:
        ValueError: malformed spec or unknown kind.
        FileNotFoundError: a path (not a pattern) that does not exist.
    """
    kind, sep, path = str(spec).partition(":")
    if not sep:
        raise ValueError(
            f"Data must be given as KIND:PATH (e.g. criteo:train.txt); got "
            f"{spec!r}. Known kinds: {', '.join(kind_names(task))}."
        )
    kind = data_kind(kind.strip(), task=task).name
    paths = [p for p in path.split(",") if p]
    if not paths:
        raise ValueError(f"No path given in {spec!r}.")
    for p in paths:
        if not any(ch in p for ch in "*?[") and not os.path.exists(p):
            raise FileNotFoundError(f"Data path does not exist: {p}")
    return kind, paths


def make_dataset(kind, paths, batch_size, **kwargs):
    """Read ranking data of `kind` with its reader.

    Args:
        kind: str. `"criteo"` or `"avazu"`.
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
    reader = data_kind(kind, task="ranking").reader
    if reader is None:
        raise ValueError(
            f"{kind}: data is read with a schema file (`adrec train "
            "--schema`, `keras_adrec.data.load_table_data`)."
        )
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
