import keras
import numpy as np

from keras_adrec.api_export import keras_adrec_export


@keras_adrec_export
class FeatureEmbedding(keras.layers.Layer):
    """One embedding table per categorical feature, looked up in one gather.

    Feature `i` owns a table of `vocabulary_sizes[i]` rows of width
    `embedding_dim`. The tables are stored as row ranges of one variable and
    looked up with a single gather (ids are shifted by each table's row
    offset), which on CPU costs one op instead of one per feature. Each
    table is initialised as DLRM does: uniform in
    `[-sqrt(1/n_i), sqrt(1/n_i)]` for a table of `n_i` rows.

    Ids must lie in `[0, vocabulary_sizes[i])`; `keras_adrec.data`
    preprocessing guarantees that (id 0 is the out-of-vocabulary bucket).

    Args:
        vocabulary_sizes: list of int. Rows of each feature's table.
        embedding_dim: int. Width D of every table.
        embeddings_initializer: initializer or `"dlrm_uniform"`. Defaults to
            `"dlrm_uniform"`, the per-table uniform range above.
        embeddings_regularizer: optional regularizer for the tables.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: int tensor of shape `[B, N]`, one id per feature.

    Returns:
        A float tensor of shape `[B, N, embedding_dim]`.

    Example:

    ```python
    layer = keras_adrec.layers.FeatureEmbedding([10, 20, 30], 16)
    vectors = layer(np.array([[1, 2, 3]]))  # shape (1, 3, 16)
    ```
    """

    def __init__(
        self,
        vocabulary_sizes,
        embedding_dim,
        embeddings_initializer="dlrm_uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        vocabulary_sizes = [int(size) for size in vocabulary_sizes]
        if not vocabulary_sizes:
            raise ValueError(
                "`vocabulary_sizes` must name at least one feature. "
                f"Received: vocabulary_sizes={vocabulary_sizes}"
            )
        if min(vocabulary_sizes) < 1:
            raise ValueError(
                "Every entry of `vocabulary_sizes` must be positive. "
                f"Received: vocabulary_sizes={vocabulary_sizes}"
            )
        if int(embedding_dim) < 1:
            raise ValueError(
                "`embedding_dim` must be positive. "
                f"Received: embedding_dim={embedding_dim}"
            )
        self.vocabulary_sizes = vocabulary_sizes
        self.embedding_dim = int(embedding_dim)
        if embeddings_initializer == "dlrm_uniform":
            self.embeddings_initializer = "dlrm_uniform"
        else:
            self.embeddings_initializer = keras.initializers.get(
                embeddings_initializer
            )
        self.embeddings_regularizer = keras.regularizers.get(
            embeddings_regularizer
        )
        self.offsets = np.concatenate(
            [[0], np.cumsum(vocabulary_sizes)[:-1]]
        ).astype("int32")

    @property
    def num_features(self):
        return len(self.vocabulary_sizes)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(
            self.vocabulary_sizes
        ):
            raise ValueError(
                f"`FeatureEmbedding` has {len(self.vocabulary_sizes)} tables "
                f"but received ids for {input_shape[-1]} features "
                f"(input shape {input_shape})."
            )
        total = int(sum(self.vocabulary_sizes))
        if self.embeddings_initializer == "dlrm_uniform":
            initializer = self._dlrm_uniform
        else:
            initializer = self.embeddings_initializer.__class__.from_config(
                self.embeddings_initializer.get_config()
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(total, self.embedding_dim),
            initializer=initializer,
            regularizer=self.embeddings_regularizer,
            # Read in `call` by a gather of the rows, then cast: an autocast
            # variable would cast (copy) the whole table under mixed precision.
            autocast=False,
        )

    def _dlrm_uniform(self, shape, dtype=None):
        bounds = np.concatenate(
            [
                np.full(size, np.sqrt(1.0 / size), dtype="float32")
                for size in self.vocabulary_sizes
            ]
        )[:, None]
        # A seeded initializer, not keras.random.uniform(seed=None): the
        # latter creates global RNG state, which XLA cannot lift when
        # `fit(jit_compile=True)` builds the model inside its trace.
        unit = keras.initializers.RandomUniform(-1.0, 1.0)(shape)
        return keras.ops.cast(unit * bounds, dtype or "float32")

    def call(self, inputs):
        ids = keras.ops.cast(inputs, "int32") + self.offsets
        if keras.backend.backend() == "tensorflow":
            # A gather from the variable itself (ResourceGather) reads only the
            # looked-up rows. `keras.ops.take` first converts the variable to
            # a tensor; once the optimizer has applied a sparse (scatter)
            # update, TensorFlow keeps the variable in copy-on-read mode, so
            # that conversion copies the whole table every step (about 10 ms
            # per step for RM1's 144,670 x 16 table on 2 CPU cores, a fifth
            # of a DLRM step at batch 1024).
            import tensorflow as tf

            # `embedding_lookup`, not `tf.gather`: it also reads the right
            # rows of a `ShardedVariable` (parameter-server training).
            outputs = tf.nn.embedding_lookup(self.embeddings.value, ids)
        else:
            outputs = keras.ops.take(self.embeddings, ids, axis=0)
        return keras.ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        initializer = self.embeddings_initializer
        if initializer != "dlrm_uniform":
            initializer = keras.initializers.serialize(initializer)
        config.update(
            {
                "vocabulary_sizes": list(self.vocabulary_sizes),
                "embedding_dim": self.embedding_dim,
                "embeddings_initializer": initializer,
                "embeddings_regularizer": keras.regularizers.serialize(
                    self.embeddings_regularizer
                ),
            }
        )
        return config
