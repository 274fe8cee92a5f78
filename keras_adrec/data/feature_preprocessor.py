"""Raw features -> model inputs, fitted on training data, saved beside a model.

DLRM's preprocessing (Naumov et al. 2019, `dlrm_data_pytorch.py`), as a
Keras layer that runs in-graph, so a SavedModel can take raw features:

- dense: `log(max(x, 0) + 1)`, with NaN (an empty field) -> 0;
- categorical, vocabulary mode (default): per column, the tokens seen at
  least `min_frequency` times in the training data get ids `1 .. V`
  (most frequent first, ties by token); everything else - unseen tokens
  and rare ones - gets id 0, the out-of-vocabulary (OOV) bucket. The empty
  token "" is an ordinary token ("missing" is a category, as in DLRM, which
  maps empty to the value 0 before building its dictionaries), so it has
  its own id when frequent enough. `vocabulary_sizes[i] = V_i + 1`.
- categorical, hashing mode (`max_index_range=M`): id =
  `tf.strings.to_hash_bucket_fast(token, M)`, in `[0, M)`; no vocabulary
  and no pass over the data. Like DLRM's `--max-ind-range`, it bounds
  every table to M rows (DLRM takes the hex value modulo M instead).

Artifacts (`save_artifacts(directory)`): `feature_preprocessor.json`
(the layer config and the vocabulary file names) and one UTF-8 text file
per categorical column, `vocabulary_NN_NAME.txt`, one token per line in id
order (line k holds id k), each line ended by "\\n"; the empty token is an
empty line. Inside a `.keras` file the same vocabulary files are stored as
the layer's assets.
"""

import json
import os

import keras
import tensorflow as tf

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.data.schema import DatasetSchema
from keras_adrec.data.vocabularies import count_vocabularies
from keras_adrec.data.vocabularies import read_vocabulary
from keras_adrec.data.vocabularies import vocabulary_file_names
from keras_adrec.data.vocabularies import write_vocabulary

ARTIFACTS_FILE = "feature_preprocessor.json"
_ARTIFACTS_VERSION = 1


@keras_adrec_export
class FeaturePreprocessor(keras.layers.Layer):
    """Map raw features to model inputs: log-dense and categorical ids.

    Build it with `FeaturePreprocessor.fit(train_dataset, schema)` (one pass
    over the training data), or `FeaturePreprocessor.load_artifacts(dir)`,
    or directly with known `vocabularies` / a `max_index_range`.

    Args:
        schema: `DatasetSchema` or its dict. The columns of the raw data.
        vocabularies: list (one per categorical column) of lists of str, or
            None. Tokens in id order: token k gets id k + 1; id 0 is OOV.
            Given here, they are part of `get_config()`; set by `fit`,
            `set_vocabularies` or `load_artifacts`, they are saved as files
            instead (artifacts, or `.keras` assets). Defaults to None.
        max_index_range: int or None. Hashing mode: ids are
            `hash(token) mod max_index_range`; excludes `vocabularies`.
            Defaults to None.
        min_frequency: int. The count a token needs in the training data
            to enter a vocabulary (used by `fit`, recorded in the config).
            Defaults to `1`.
        vocabulary_sizes: list of int or None. Expected table sizes (OOV
            included), recorded so that a layer rebuilt from its config
            knows them before its vocabularies are loaded.
            Defaults to None.
        **kwargs: base `keras.layers.Layer` arguments. `dtype` defaults to
            `"float32"`, so that a mixed-precision policy does not cast
            large raw counts to float16.

    Call arguments:
        inputs: dict with `"dense"`: float [B, num_dense] (NaN = missing)
            and `"categorical"`: tf.string [B, num_categorical].

    Returns:
        dict with `"dense"`: float32 [B, num_dense] and `"sparse"`: int32
        [B, num_categorical], ids of column i in `[0, vocabulary_sizes[i])`.

    Example:

    ```python
    schema = keras_adrec.data.CRITEO_SCHEMA
    train = keras_adrec.data.criteo_dataset(path, 128, split="train")
    preprocessor = keras_adrec.data.FeaturePreprocessor.fit(
        train, schema, min_frequency=2
    )
    preprocessor.vocabulary_sizes  # sizes of the embedding tables
    preprocessor.save_artifacts("model_dir/preprocessing")
    inputs = keras_adrec.data.preprocess(train, preprocessor)
    ```

    References:
        Naumov et al., "Deep Learning Recommendation Model for
        Personalization and Recommendation Systems", 2019 (data pipeline
        of the released DLRM code).
    """

    def __init__(
        self,
        schema,
        vocabularies=None,
        max_index_range=None,
        min_frequency=1,
        vocabulary_sizes=None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if isinstance(schema, dict):
            schema = DatasetSchema.from_dict(schema)
        if not isinstance(schema, DatasetSchema):
            raise ValueError(
                "`schema` must be a DatasetSchema or its dict. "
                f"Received: schema={schema!r}"
            )
        if max_index_range is not None and (
            not isinstance(max_index_range, int) or max_index_range <= 0
        ):
            raise ValueError(
                "`max_index_range` must be a positive int or None. "
                f"Received: max_index_range={max_index_range!r}"
            )
        if not isinstance(min_frequency, int) or min_frequency <= 0:
            raise ValueError(
                "`min_frequency` must be a positive int. "
                f"Received: min_frequency={min_frequency!r}"
            )
        if max_index_range is not None and vocabularies is not None:
            raise ValueError(
                "Pass either `vocabularies` or `max_index_range`, not both. "
                f"Received: max_index_range={max_index_range} and "
                "vocabularies."
            )
        if vocabulary_sizes is not None:
            vocabulary_sizes = [int(s) for s in vocabulary_sizes]
            if len(vocabulary_sizes) != schema.num_categorical or any(
                s <= 0 for s in vocabulary_sizes
            ):
                raise ValueError(
                    "`vocabulary_sizes` must hold one positive int per "
                    f"categorical column ({schema.num_categorical}). "
                    f"Received: vocabulary_sizes={vocabulary_sizes}"
                )
        self.schema = schema
        self.max_index_range = max_index_range
        self.min_frequency = min_frequency
        self._declared_sizes = vocabulary_sizes
        self._config_vocabularies = None
        self._vocabularies = None
        self._tables = None
        # Rows counted by `fit` (None when not fitted by counting).
        self.fitted_rows = None
        if vocabularies is not None:
            self.set_vocabularies(vocabularies)
            self._config_vocabularies = self._vocabularies

    # ----------------------------------------------------------- fitting

    @classmethod
    def fit(
        cls, dataset, schema, min_frequency=1, max_index_range=None, **kwargs
    ):
        """Fit on a dataset of raw training batches (one pass).

        Args:
            dataset: finite `tf.data.Dataset` of `(raw_features, label)` or
                of `raw_features` (a reader's output). Fit on the training
                split only; categories seen only in validation then map
                to OOV, as they would for unseen data.
            schema: `DatasetSchema` of the data.
            min_frequency: int. Minimum count for a token to get an id.
                Defaults to `1`.
            max_index_range: int or None. Hashing mode; then nothing is
                counted and the dataset is not read. Defaults to None.
            **kwargs: further constructor arguments (`name`, ...).

        Returns:
            A fitted `FeaturePreprocessor`.
        """
        layer = cls(
            schema,
            max_index_range=max_index_range,
            min_frequency=min_frequency,
            **kwargs,
        )
        if max_index_range is None:
            vocabularies, rows = count_vocabularies(
                dataset,
                schema.num_categorical,
                min_frequency,
                column_names=schema.categorical_names,
                return_rows=True,
            )
            layer.set_vocabularies(vocabularies)
            # Rows read while fitting: how long an epoch of `dataset` is.
            layer.fitted_rows = rows
        return layer

    def set_vocabularies(self, vocabularies):
        """Replace the vocabularies (one list of str tokens per column)."""
        if self.max_index_range is not None:
            raise ValueError(
                "A FeaturePreprocessor in hashing mode (max_index_range="
                f"{self.max_index_range}) takes no vocabularies."
            )
        vocabularies = [list(v) for v in vocabularies]
        if len(vocabularies) != self.schema.num_categorical:
            raise ValueError(
                "`vocabularies` must hold one list per categorical column "
                f"({self.schema.num_categorical}). "
                f"Received: {len(vocabularies)} lists"
            )
        for name, vocabulary in zip(
            self.schema.categorical_names, vocabularies
        ):
            if len(set(vocabulary)) != len(vocabulary):
                raise ValueError(
                    f"The vocabulary of column {name} has duplicate tokens."
                )
        sizes = [len(v) + 1 for v in vocabularies]
        if self._declared_sizes is not None and sizes != self._declared_sizes:
            raise ValueError(
                "The vocabularies do not match the recorded "
                f"`vocabulary_sizes`: expected {self._declared_sizes}, "
                f"found {sizes}."
            )
        with tf.init_scope():
            tables = [_make_table(v) for v in vocabularies]
        self._vocabularies = vocabularies
        self._tables = _Tables(tables)

    @property
    def vocabularies(self):
        """The token lists (id k + 1 = token k), or None in hashing mode."""
        return self._vocabularies

    @property
    def vocabulary_sizes(self):
        """list of int. Rows each categorical column's table needs."""
        if self.max_index_range is not None:
            return [self.max_index_range] * self.schema.num_categorical
        if self._vocabularies is not None:
            return [len(v) + 1 for v in self._vocabularies]
        if self._declared_sizes is not None:
            return list(self._declared_sizes)
        raise ValueError(
            "This FeaturePreprocessor has no vocabularies yet. Fit it with "
            "`FeaturePreprocessor.fit`, or load them with `load_artifacts`."
        )

    # ----------------------------------------------------------- layer API

    def build(self, input_shape):
        for key, width in (
            ("dense", self.schema.num_dense),
            ("categorical", self.schema.num_categorical),
        ):
            shape = input_shape.get(key) if input_shape else None
            if shape is None:
                raise ValueError(
                    f"FeaturePreprocessor expects a dict with key {key!r}. "
                    f"Received input shapes: {input_shape}"
                )
            if shape[-1] is not None and shape[-1] != width:
                raise ValueError(
                    f"Input {key!r} must have {width} columns for schema "
                    f"{self.schema.name!r}. Received shape: {shape}"
                )
        self.built = True

    def call(self, inputs):
        dense = keras.ops.cast(inputs["dense"], "float32")
        dense = keras.ops.where(keras.ops.isnan(dense), 0.0, dense)
        dense = keras.ops.log1p(keras.ops.maximum(dense, 0.0))
        categorical = inputs["categorical"]
        if self.max_index_range is not None:
            ids = tf.strings.to_hash_bucket_fast(
                categorical, self.max_index_range
            )
        else:
            if self._tables is None:
                self.vocabulary_sizes  # raises the "not fitted" error
                raise ValueError(
                    "This FeaturePreprocessor's vocabularies were not "
                    "loaded: call `set_vocabularies` or use "
                    "`FeaturePreprocessor.load_artifacts`."
                )
            ids = tf.stack(
                [
                    table.lookup(categorical[:, i])
                    for i, table in enumerate(self._tables.tables)
                ],
                axis=1,
            )
        return {"dense": dense, "sparse": keras.ops.cast(ids, "int32")}

    def compute_output_spec(self, inputs):
        batch = inputs["dense"].shape[0]
        return {
            "dense": keras.KerasTensor(
                (batch, self.schema.num_dense), dtype="float32"
            ),
            "sparse": keras.KerasTensor(
                (batch, self.schema.num_categorical), dtype="int32"
            ),
        }

    def get_config(self):
        config = super().get_config()
        sizes = None
        if self.max_index_range is None and (
            self._vocabularies is not None or self._declared_sizes
        ):
            sizes = self.vocabulary_sizes
        config.update(
            {
                "schema": self.schema.to_dict(),
                "vocabularies": self._config_vocabularies,
                "max_index_range": self.max_index_range,
                "min_frequency": self.min_frequency,
                "vocabulary_sizes": sizes,
            }
        )
        return config

    # ----------------------------------------------------------- artifacts

    def save_artifacts(self, directory):
        """Write `feature_preprocessor.json` and vocabulary files.

        Args:
            directory: str or os.PathLike; created if missing.

        Returns:
            The path of the JSON file.
        """
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        config = self.get_config()
        config["vocabularies"] = None
        files = None
        if self.max_index_range is None:
            files = self._write_vocabularies(directory)
        path = os.path.join(directory, ARTIFACTS_FILE)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "format_version": _ARTIFACTS_VERSION,
                    "class_name": "keras_adrec>FeaturePreprocessor",
                    "config": config,
                    "vocabulary_files": files,
                },
                f,
                indent=2,
            )
        return path

    @classmethod
    def load_artifacts(cls, directory):
        """Rebuild a preprocessor written by `save_artifacts(directory)`."""
        directory = os.fspath(directory)
        path = os.path.join(directory, ARTIFACTS_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No {ARTIFACTS_FILE} in {directory}: not a directory "
                "written by FeaturePreprocessor.save_artifacts."
            )
        with open(path, encoding="utf-8") as f:
            artifacts = json.load(f)
        if artifacts.get("format_version") != _ARTIFACTS_VERSION:
            raise ValueError(
                f"{path}: unsupported format_version "
                f"{artifacts.get('format_version')!r}."
            )
        layer = cls.from_config(artifacts["config"])
        if artifacts["vocabulary_files"] is not None:
            layer.set_vocabularies(
                [
                    read_vocabulary(os.path.join(directory, name))
                    for name in artifacts["vocabulary_files"]
                ]
            )
        return layer

    def save_assets(self, dir_path):
        if self.max_index_range is None and self._config_vocabularies is None:
            if self._vocabularies is not None:
                self._write_vocabularies(dir_path)

    def load_assets(self, dir_path):
        if self.max_index_range is None and self._config_vocabularies is None:
            names = vocabulary_file_names(self.schema)
            paths = [os.path.join(dir_path, n) for n in names]
            if all(os.path.isfile(p) for p in paths):
                self.set_vocabularies([read_vocabulary(p) for p in paths])

    def _write_vocabularies(self, directory):
        if self._vocabularies is None:
            raise ValueError(
                "This FeaturePreprocessor has no vocabularies to save. "
                "Fit it first with `FeaturePreprocessor.fit`."
            )
        names = vocabulary_file_names(self.schema)
        for name, vocabulary in zip(names, self._vocabularies):
            write_vocabulary(os.path.join(directory, name), vocabulary)
        return names


def preprocess(dataset, preprocessor):
    """Map a reader's `(raw_features, label)` batches to model inputs.

    Args:
        dataset: `tf.data.Dataset` of `(raw_features, label)`.
        preprocessor: a fitted `FeaturePreprocessor`.

    Returns:
        A `tf.data.Dataset` of `({"dense", "sparse"}, label)`, mapped in
        parallel and prefetched.
    """

    def apply(features, label):
        return preprocessor(features), label

    dataset = dataset.map(
        apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


class _Tables(tf.Module):
    """Holds the lookup tables so SavedModel export tracks them."""

    def __init__(self, tables):
        super().__init__(name=None)
        self.tables = tables


def _make_table(vocabulary):
    keys = tf.constant(vocabulary, dtype=tf.string, shape=[len(vocabulary)])
    values = tf.range(1, len(vocabulary) + 1, dtype=tf.int64)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, values), default_value=0
    )
