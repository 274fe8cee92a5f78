"""Bags of tokens -> padded ids for `keras_adrec.layers.MultiHotEmbedding`.

One `keras.layers.StringLookup` per multi-hot column: the tokens seen at
least `min_frequency` times in the training data get ids `1 .. V` (most
frequent first, ties by token), every other token id 0, the
out-of-vocabulary bucket, as the single-valued features have it. Bags are
padded with -1 (`keras_adrec.layers.embedding.multi_hot_embedding.PADDING_ID`)
to the longest bag of the batch.
"""

import json
import os

import keras
import tensorflow as tf

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.vocabularies import count_vocabularies

ARTIFACTS_FILE = "multi_hot_lookup.json"
PADDING_ID = -1


@keras_adrec_export
class MultiHotLookup(keras.layers.Layer):
    """Map M ragged string bags `[B, None]` to int ids `[B, M, L]`.

    Args:
        names: list of str. The multi-hot columns, in order.
        vocabularies: list (one per column) of lists of str. Tokens in id
            order: token k gets id k + 1; id 0 is out of vocabulary.
        **kwargs: base layer keyword arguments.

    Call arguments:
        inputs: list or tuple of M ragged tf.string `[B, None]`, one per
            column.

    Returns:
        int32 `[B, M, L]`, padded with -1.

    Example:

    ```python
    lookup = keras_adrec.data.MultiHotLookup(["tags"], [["a", "b"]])
    bags = tf.ragged.constant([["b", "z"], []])
    lookup([bags])  # [[[2, 0]], [[-1, -1]]]
    ```
    """

    def __init__(self, names, vocabularies, **kwargs):
        super().__init__(**kwargs)
        self.names = [str(name) for name in names]
        self.vocabularies = [[str(t) for t in v] for v in vocabularies]
        if len(self.vocabularies) != len(self.names):
            raise ValueError(
                "`vocabularies` must hold one list per multi-hot column "
                f"({len(self.names)}). Received: {len(self.vocabularies)}"
            )
        self.lookups = [
            keras.layers.StringLookup(
                vocabulary=vocabulary or None,
                num_oov_indices=1,
                mask_token=None,
                name=f"lookup_{index}",
            )
            for index, vocabulary in enumerate(self.vocabularies)
        ]

    def build(self, input_shape=None):
        # Nothing to create: the lookups hold their vocabularies already.
        self.built = True

    @property
    def vocabulary_sizes(self):
        """Rows each multi-hot column's table needs (OOV included)."""
        return [len(v) + 1 for v in self.vocabularies]

    @classmethod
    def fit(cls, dataset, names, min_frequency=1, files=()):
        """Count each column's tokens over raw training batches.

        Args:
            dataset: `tf.data.Dataset` of `(raw_features, label)` whose
                features hold `"multi_hot"`, a tuple of ragged `[B, None]`.
            names: list of str. The multi-hot columns.
            min_frequency: int. Minimum count for a token to get an id.
            files: the files read, named in the error.

        Raises:
            DataFormatError: a column holds an empty list in every row.
        """
        vocabularies = []
        for index, name in enumerate(names):
            tokens = dataset.map(
                lambda features, *_, i=index: {
                    "categorical": features["multi_hot"][i].flat_values[:, None]
                }
            )
            vocabulary = count_vocabularies(
                tokens, 1, min_frequency, column_names=[name]
            )[0]
            if not vocabulary:
                raise DataFormatError(
                    ", ".join(str(f) for f in files) or "the data",
                    None,
                    "every list of the multi-hot column is empty"
                    + (
                        f" or rarer than {min_frequency}"
                        if min_frequency > 1
                        else ""
                    ),
                    column=name,
                )
            vocabularies.append(vocabulary)
        return cls(names, vocabularies)

    def call(self, inputs):
        if len(inputs) != len(self.lookups):
            raise ValueError(
                f"`MultiHotLookup` has {len(self.lookups)} columns but "
                f"received {len(inputs)} bags."
            )
        columns = [
            tf.ragged.map_flat_values(lookup, bag).to_tensor(
                default_value=PADDING_ID
            )
            for lookup, bag in zip(self.lookups, inputs)
        ]
        # Every column padded to the longest bag of the batch.
        length = tf.reduce_max([tf.shape(c)[1] for c in columns])
        columns = [
            tf.pad(
                c,
                [[0, 0], [0, length - tf.shape(c)[1]]],
                constant_values=PADDING_ID,
            )
            for c in columns
        ]
        return tf.cast(tf.stack(columns, axis=1), tf.int32)

    def get_config(self):
        config = super().get_config()
        config.update({"names": self.names, "vocabularies": self.vocabularies})
        return config

    def save_artifacts(self, directory):
        """Write `multi_hot_lookup.json` (names and vocabularies)."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, ARTIFACTS_FILE)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(
                {"names": self.names, "vocabularies": self.vocabularies},
                handle,
            )

    @classmethod
    def load_artifacts(cls, directory):
        """The lookup saved by `save_artifacts`, or None if there is none."""
        path = os.path.join(directory, ARTIFACTS_FILE)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
        return cls(saved["names"], saved["vocabularies"])


def preprocess_table(dataset, preprocessor, lookup=None, with_group=False):
    """Map raw table batches to model inputs.

    Args:
        dataset: `tf.data.Dataset` of a table reader's
            `(raw_features, label)`.
        preprocessor: a fitted `keras_adrec.data.FeaturePreprocessor` (dense
            and categorical columns).
        lookup: a `MultiHotLookup`, or None without multi-hot columns.
        with_group: bool. Yield `(inputs, label, group)`, the group for
            GAUC; the raw features must hold `"group"`.

    Returns:
        A `tf.data.Dataset` of `({"dense", "sparse"[, "multi_hot"]},
        label[, group])`.
    """

    def apply(features, label):
        inputs = preprocessor(
            {"dense": features["dense"], "categorical": features["categorical"]}
        )
        if lookup is not None:
            inputs["multi_hot"] = lookup(features["multi_hot"])
        if with_group:
            return inputs, label, features["group"]
        return inputs, label

    dataset = dataset.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
