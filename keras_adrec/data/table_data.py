"""Read, split and preprocess a user's table: `load_table_data`.

The table counterpart of `load_ranking_data`: a `TableSchema` names the
columns of Parquet or CSV files (`"parquet:PATH"`, `"csv:PATH"`). Dense and
categorical columns go through a `FeaturePreprocessor`, multi-hot columns
through a `MultiHotLookup`, both fitted on the training rows only; with a
`group` column the validation batches are `(inputs, label, group)`, which
`keras_adrec.training.evaluate_model` turns into a GAUC.
"""

import tensorflow as tf

from keras_adrec.data.errors import raise_data_format_errors
from keras_adrec.data.feature_preprocessor import FeaturePreprocessor
from keras_adrec.data.kinds import parse_data_spec
from keras_adrec.data.multi_hot_lookup import MultiHotLookup
from keras_adrec.data.multi_hot_lookup import preprocess_table
from keras_adrec.data.ranking_data import RankingData
from keras_adrec.data.table import table_dataset
from keras_adrec.data.table import table_file_format


def load_table_data(
    data,
    schema,
    *,
    val_data=None,
    val_fraction=0.2,
    split_mode="time",
    min_frequency=1,
    max_index_range=None,
    batch_size=4096,
):
    """Stream a table's training and validation rows, preprocessed.

    Args:
        data: `"parquet:PATH"` or `"csv:PATH"` (files, directories, glob
            patterns; comma-separated).
        schema: a `TableSchema`.
        val_data: optional `"KIND:PATH"` of separate validation files;
            otherwise the last `val_fraction` of `data`'s rows validate.
        val_fraction: float in (0, 1). Defaults to `0.2`.
        split_mode: `"time"` only (rows in file order).
        min_frequency, max_index_range: the `FeaturePreprocessor`'s;
            `min_frequency` applies to the multi-hot vocabularies too.
        batch_size: int. Rows per batch.

    Returns:
        A `RankingData` whose `multi_hot_lookup` is the fitted
        `MultiHotLookup` (None without multi-hot columns).

    Raises:
        keras_adrec.data.DataFormatError: a column is missing, of the wrong
            type, a label is not 0/1, or a multi-hot column is empty
            everywhere (the message names the file and the column).
    """
    if split_mode != "time":
        raise ValueError(
            "A table is split in file order (split_mode='time'); "
            f"received split_mode={split_mode!r}. Give --val-data for "
            "another split."
        )
    if not schema.categorical:
        raise ValueError(
            "Training on a table needs at least one `categorical` column "
            "in the schema."
        )
    kind, paths = parse_data_spec(data, task="ranking")
    file_format = table_file_format(kind)
    read = {"schema": schema, "file_format": file_format}
    if val_data:
        val_kind, val_paths = parse_data_spec(val_data, task="ranking")
        if val_kind != kind:
            raise ValueError(
                f"Validation data kind {val_kind!r} differs from the "
                f"training data kind {kind!r}."
            )
        train_raw = table_dataset(paths, batch_size, **read)
        val_raw = table_dataset(val_paths, batch_size, **read)
        split_text = "separate validation files"
    else:
        val_paths = []
        train_raw, val_raw = (
            table_dataset(
                paths,
                batch_size,
                split=split,
                val_fraction=val_fraction,
                **read,
            )
            for split in ("train", "val")
        )
        split_text = f"file order, last {val_fraction:.0%} validation"
    dataset_schema = schema.dataset_schema()
    with raise_data_format_errors():
        preprocessor = FeaturePreprocessor.fit(
            train_raw,
            dataset_schema,
            min_frequency=min_frequency,
            max_index_range=max_index_range,
        )
        lookup = None
        if schema.multi_hot:
            lookup = MultiHotLookup.fit(
                train_raw,
                list(schema.multi_hot),
                min_frequency=min_frequency,
                files=paths,
            )
    train = preprocess_table(train_raw, preprocessor, lookup)
    val = preprocess_table(
        val_raw, preprocessor, lookup, with_group=schema.group is not None
    )
    source = {
        "synthetic": False,
        "kind": kind,
        "paths": [str(p) for p in paths],
        "val_paths": [str(p) for p in val_paths] or None,
        "split": split_text,
        "schema": schema.to_dict(),
    }
    return RankingData(
        train=train.prefetch(tf.data.AUTOTUNE),
        val=val.prefetch(tf.data.AUTOTUNE),
        preprocessor=preprocessor,
        schema=dataset_schema,
        source=source,
        read_stats={"train": None, "val": None},
        train_rows=preprocessor.fitted_rows,
        multi_hot_lookup=lookup,
    )
