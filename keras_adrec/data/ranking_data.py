"""Read, split and preprocess ranking data once: `load_ranking_data`.

Every job that trains a ranking model (`adrec train`, `adrec compare`,
`adrec tune`, the benchmarks) gets its data from here, as a `RankingData`:
the training and validation rows (streamed `tf.data` pipelines or numpy
arrays held in memory), the `FeaturePreprocessor` fitted on the training
rows only, the schema, and a description of the source.
"""

import dataclasses
import pathlib

import numpy as np
import tensorflow as tf

from keras_adrec.data.errors import raise_data_format_errors
from keras_adrec.data.feature_preprocessor import FeaturePreprocessor
from keras_adrec.data.feature_preprocessor import preprocess
from keras_adrec.data.kinds import make_dataset
from keras_adrec.data.kinds import parse_data_spec
from keras_adrec.data.kinds import schema_for
from keras_adrec.data.schema import DatasetSchema

# Streamed inputs smaller than this are cached in memory after
# preprocessing.
_CACHE_BYTES = 512 * 1024 * 1024
# Rows per parse batch when the rows are loaded into memory.
_PARSE_BATCH = 4096


@dataclasses.dataclass
class RankingData:
    """Preprocessed training and validation rows of a ranking data set.

    Args:
        train: the training rows: a `tf.data.Dataset` of
            `({"dense", "sparse"}, label)` batches, or (in memory) a
            `(features, labels)` pair of a dict of numpy arrays and a
            float32 `[N, 1]` array.
        val: the validation rows, in the same form.
        preprocessor: the `FeaturePreprocessor` fitted on `train`'s raw rows.
        schema: the `DatasetSchema` of the raw rows.
        source: dict describing where the rows come from: `synthetic`
            (bool), `kind`, `paths`, `split` (one line), and for synthetic
            data the generator's description.
        read_stats: `{"train": ReadStats or None, "val": ...}` of the
            readers (skipped lines), for text files.
        holdout: optional rows from the training distribution that no
            step trains on (synthetic data: held out from the training
            days), in the form of `val`; None when there are none.
        train_rows: int or None. Training rows counted while fitting the
            vocabularies (one epoch's length); None in hashing mode.
        multi_hot_lookup: the `MultiHotLookup` of a table's multi-hot
            columns (`load_table_data`), or None.
    """

    train: object
    val: object
    preprocessor: FeaturePreprocessor
    schema: DatasetSchema
    source: dict
    read_stats: dict = dataclasses.field(default_factory=dict)
    holdout: object = None
    train_rows: object = None
    multi_hot_lookup: object = None

    @property
    def vocabulary_sizes(self):
        return list(self.preprocessor.vocabulary_sizes)

    @property
    def num_dense(self):
        return self.schema.num_dense

    @property
    def feature_names(self):
        """Token names of the interaction: the dense vector, then each
        categorical feature."""
        return ["dense"] + list(self.schema.categorical_names)

    @property
    def in_memory(self):
        return isinstance(self.train, tuple)

    def skipped_lines(self):
        """Lines skipped by `on_bad_lines="skip"`, per split."""
        return {
            split: (stats.skipped_lines if stats is not None else 0)
            for split, stats in self.read_stats.items()
        }


def load_ranking_data(
    data=None,
    *,
    synthetic=None,
    val_data=None,
    val_fraction=0.2,
    split_mode="time",
    seed=0,
    on_bad_lines="error",
    min_frequency=1,
    max_index_range=None,
    batch_size=_PARSE_BATCH,
    in_memory=False,
    holdout_rows=0,
):
    """Read, split and preprocess ranking data; fit preprocessing once.

    Args:
        data: `"KIND:PATH"` (kind `criteo` or `avazu`), or None with
            `synthetic`.
        synthetic: a `keras_adrec.data.SyntheticCriteo` to use instead of
            files: its last day validates, the days before train (so
            validation sees shifted data).
        val_data: optional `"KIND:PATH"` of separate validation files;
            otherwise the last `val_fraction` of `data` (in time order, or
            a random share with `split_mode="random"`) validates.
        val_fraction: float in (0, 1). Defaults to `0.2`.
        split_mode: `"time"` or `"random"`. Defaults to `"time"`.
        seed: int. The random split's key. Defaults to `0`.
        on_bad_lines: `"error"` or `"skip"`. Defaults to `"error"`.
        min_frequency, max_index_range: the `FeaturePreprocessor`'s.
        batch_size: int. Rows per batch of the streamed training pipeline.
        in_memory: bool. Return numpy arrays instead of pipelines.
        holdout_rows: int. With `synthetic`: rows of each training day's
            distribution that no step trains on (rows past `rows_per_day`),
            returned as `holdout`. Defaults to `0` (none).

    Returns:
        A `RankingData`.

    Raises:
        keras_adrec.data.DataFormatError: malformed input (file, line).
        ValueError: bad arguments or no rows.

    Example:

    ```python
    loaded = keras_adrec.data.load_ranking_data(
        "criteo:train.txt", in_memory=True
    )
    (features, labels) = loaded.train
    ```
    """
    if (data is None) == (synthetic is None):
        raise ValueError(
            "Give exactly one of `data` (KIND:PATH) and `synthetic`."
        )
    parse_batch = _PARSE_BATCH if in_memory else int(batch_size)
    holdout_raw = None
    if synthetic is not None:
        train_raw, val_raw, schema, source, paths = _synthetic_raw(
            synthetic, parse_batch
        )
        if holdout_rows:
            holdout_raw = _synthetic_holdout(
                synthetic, int(holdout_rows), parse_batch
            )
            source["holdout"] = (
                f"{int(holdout_rows):,} further rows of each training day"
            )
    else:
        train_raw, val_raw, schema, source, paths = _file_raw(
            data,
            val_data,
            parse_batch,
            val_fraction=val_fraction,
            split_mode=split_mode,
            seed=seed,
            on_bad_lines=on_bad_lines,
        )
    with raise_data_format_errors():
        preprocessor = FeaturePreprocessor.fit(
            train_raw,
            schema,
            min_frequency=min_frequency,
            max_index_range=max_index_range,
        )
        train = preprocess(train_raw, preprocessor)
        val = preprocess(val_raw, preprocessor)
        holdout = None
        if holdout_raw is not None:
            holdout = preprocess(holdout_raw, preprocessor)
        if in_memory:
            train, val = _to_arrays(train), _to_arrays(val)
            holdout = None if holdout is None else _to_arrays(holdout)
        else:
            if _total_bytes(paths) < _CACHE_BYTES:
                train, val = train.cache(), val.cache()
            train = train.prefetch(tf.data.AUTOTUNE)
            val = val.prefetch(tf.data.AUTOTUNE)
    return RankingData(
        train=train,
        val=val,
        preprocessor=preprocessor,
        schema=schema,
        source=source,
        read_stats={
            "train": getattr(train_raw, "read_stats", None),
            "val": getattr(val_raw, "read_stats", None),
        },
        holdout=holdout,
        train_rows=preprocessor.fitted_rows,
    )


def _file_raw(data, val_data, batch_size, **split):
    kind, paths = parse_data_spec(data, task="ranking")
    common = {"on_bad_lines": split["on_bad_lines"], "seed": split["seed"]}
    if val_data:
        val_kind, val_paths = parse_data_spec(val_data, task="ranking")
        if val_kind != kind:
            raise ValueError(
                f"Validation data kind {val_kind!r} differs from the "
                f"training data kind {kind!r}."
            )
        train_raw = make_dataset(kind, paths, batch_size, **common)
        val_raw = make_dataset(kind, val_paths, batch_size, **common)
        split_text = "separate validation files"
    else:
        val_paths = []
        how = {
            "val_fraction": split["val_fraction"],
            "split_mode": split["split_mode"],
        }
        train_raw = make_dataset(
            kind, paths, batch_size, split="train", **how, **common
        )
        val_raw = make_dataset(
            kind, paths, batch_size, split="val", **how, **common
        )
        share = f"{how['val_fraction']:.0%}"
        split_text = (
            f"time-ordered, last {share} validation"
            if how["split_mode"] == "time"
            else f"random {share} validation"
        )
    source = {
        "synthetic": False,
        "kind": kind,
        "paths": [str(p) for p in paths],
        "val_paths": [str(p) for p in val_paths] or None,
        "split": split_text,
    }
    return train_raw, val_raw, schema_for(kind), source, paths + val_paths


def _synthetic_raw(generator, batch_size):
    days = generator.num_days
    if days < 2:
        raise ValueError(
            "Synthetic data needs at least 2 days (training days and one "
            f"validation day). Received: num_days={days}"
        )
    train_raw = generator.dataset(
        days=list(range(days - 1)), batch_size=batch_size
    )
    val_raw = generator.dataset(days=[days - 1], batch_size=batch_size)
    source = {
        "synthetic": True,
        "kind": "synthetic",
        "generator": generator.describe(),
        "split": f"days 0-{days - 2} train, day {days - 1} validation",
    }
    return train_raw, val_raw, generator.schema, source, []


def _synthetic_holdout(generator, rows, batch_size):
    days = list(range(generator.num_days - 1))
    start = generator.rows_per_day
    return generator.dataset(
        days=days, batch_size=batch_size, start=start, stop=start + rows
    )


def _to_arrays(dataset):
    """Preprocessed batches -> `(features dict of arrays, labels [N, 1])`."""
    dense, sparse, labels = [], [], []
    for features, label in dataset:
        dense.append(features["dense"].numpy())
        sparse.append(features["sparse"].numpy())
        labels.append(label.numpy())
    if not labels:
        raise ValueError("The data yielded no rows.")
    return (
        {"dense": np.concatenate(dense), "sparse": np.concatenate(sparse)},
        np.concatenate(labels).reshape(-1, 1).astype("float32"),
    )


def _total_bytes(paths):
    total = 0
    for path in paths:
        p = pathlib.Path(path)
        if p.is_dir():
            total += sum(f.stat().st_size for f in p.iterdir() if f.is_file())
        elif p.exists():
            total += p.stat().st_size
    return total
