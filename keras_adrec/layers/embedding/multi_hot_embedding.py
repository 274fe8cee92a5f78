import keras

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.embedding.feature_embedding import FeatureEmbedding

# The id that fills a padded bag; every real id is 0 or more (id 0 is the
# out-of-vocabulary bucket, as for `FeatureEmbedding`).
PADDING_ID = -1
COMBINERS = ("sum", "mean", "attention")
# Attention score of a padded slot: its softmax weight is 0.
_MASKED_SCORE = -1e9


@keras_adrec_export
class MultiHotEmbedding(keras.layers.Layer):
    """One token per multi-valued feature: a bag of ids, looked up and pooled.

    Feature `i` (a list of tags, the last items viewed) owns a table of
    `vocabulary_sizes[i]` rows of width `embedding_dim`, stored and
    initialised as `keras_adrec.layers.FeatureEmbedding` stores its tables.
    Each bag's vectors are pooled into one vector, so the feature becomes
    one token of the interaction beside the single-valued features:

    - `"sum"`: the sum of the bag's vectors;
    - `"mean"`: their mean;
    - `"attention"`: a weighted sum, the weights a softmax over the bag of
      `dot(vector, q_i) / sqrt(D)` with a learned query `q_i` per feature
      (initialised to zero, so training starts from the mean).

    Bags are padded with the id `-1` (`PADDING_ID`): a padded slot adds
    nothing, and an empty bag pools to the zero vector. Real ids lie in
    `[0, vocabulary_sizes[i])`, id 0 being the out-of-vocabulary bucket
    (`keras_adrec.data` preprocessing guarantees both). On the TensorFlow
    backend a `tf.RaggedTensor` of shape `[B, F, None]` is accepted too and
    padded with `-1`.

    Args:
        vocabulary_sizes: list of int. Rows of each multi-hot feature's
            table.
        embedding_dim: int. Width D of every table.
        combiner: str. `"sum"`, `"mean"` or `"attention"`. Defaults to
            `"mean"`.
        embeddings_initializer: initializer or `"dlrm_uniform"`. Defaults to
            `"dlrm_uniform"`.
        embeddings_regularizer: optional regularizer for the tables.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: int tensor of shape `[B, F, L]`: `F` bags of at most `L`
            ids, padded with `-1`; or a ragged `[B, F, None]` tensor.

    Returns:
        A float tensor of shape `[B, F, embedding_dim]`, one token per
        feature.

    Example:

    ```python
    layer = keras_adrec.layers.MultiHotEmbedding([10, 20], 8, combiner="sum")
    bags = np.array([[[1, 2, -1], [5, -1, -1]]])  # B=1, F=2, L=3
    tokens = layer(bags)  # shape (1, 2, 8)
    ```
    """

    def __init__(
        self,
        vocabulary_sizes,
        embedding_dim,
        combiner="mean",
        embeddings_initializer="dlrm_uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if combiner not in COMBINERS:
            raise ValueError(
                f"`combiner` must be one of {COMBINERS}. "
                f"Received: combiner={combiner!r}"
            )
        self.combiner = combiner
        # The tables and their checks are FeatureEmbedding's.
        self.tables = FeatureEmbedding(
            vocabulary_sizes,
            embedding_dim,
            embeddings_initializer=embeddings_initializer,
            embeddings_regularizer=embeddings_regularizer,
            dtype=self.dtype_policy,
            name="tables",
        )
        self.vocabulary_sizes = self.tables.vocabulary_sizes
        self.embedding_dim = self.tables.embedding_dim

    @property
    def num_features(self):
        return len(self.vocabulary_sizes)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "`MultiHotEmbedding` expects ids of shape [B, F, L]. "
                f"Received input shape {input_shape}."
            )
        if input_shape[1] is not None and input_shape[1] != self.num_features:
            raise ValueError(
                f"`MultiHotEmbedding` has {self.num_features} tables but "
                f"received bags for {input_shape[1]} features "
                f"(input shape {input_shape})."
            )
        # Looked up as [B, L, F]: the feature axis last, as the tables
        # expect it.
        self.tables.build((input_shape[0], input_shape[2], self.num_features))
        if self.combiner == "attention":
            self.query = self.add_weight(
                name="query",
                shape=(self.num_features, self.embedding_dim),
                initializer="zeros",
            )

    def call(self, inputs):
        ids = _dense_ids(inputs)
        mask = keras.ops.greater_equal(ids, 0)
        safe = keras.ops.where(mask, ids, keras.ops.zeros_like(ids))
        # [B, F, L] -> [B, L, F] -> vectors [B, L, F, D] -> [B, F, L, D].
        vectors = self.tables(keras.ops.transpose(safe, (0, 2, 1)))
        vectors = keras.ops.transpose(vectors, (0, 2, 1, 3))
        weights = keras.ops.cast(mask, "float32")
        if self.combiner == "mean":
            count = keras.ops.sum(weights, axis=-1, keepdims=True)
            weights = weights / keras.ops.maximum(count, 1.0)
        elif self.combiner == "attention":
            weights = self._attention_weights(vectors, mask)
        weights = keras.ops.cast(weights, vectors.dtype)
        return keras.ops.sum(vectors * weights[..., None], axis=2)

    def _attention_weights(self, vectors, mask):
        query = keras.ops.cast(self.query, "float32")
        scores = keras.ops.einsum(
            "bfld,fd->bfl", keras.ops.cast(vectors, "float32"), query
        ) / keras.ops.sqrt(float(self.embedding_dim))
        scores = keras.ops.where(mask, scores, _MASKED_SCORE)
        weights = keras.ops.softmax(scores, axis=-1)
        # An empty bag (every slot padded) gets weight 0 everywhere.
        return weights * keras.ops.cast(mask, "float32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        tables = self.tables.get_config()
        config.update(
            {
                "vocabulary_sizes": list(self.vocabulary_sizes),
                "embedding_dim": self.embedding_dim,
                "combiner": self.combiner,
                "embeddings_initializer": tables["embeddings_initializer"],
                "embeddings_regularizer": tables["embeddings_regularizer"],
            }
        )
        return config


def _dense_ids(inputs):
    """Padded int32 ids `[B, F, L]`; a ragged tensor is padded with -1."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(inputs, tf.RaggedTensor):
            inputs = inputs.to_tensor(default_value=PADDING_ID)
    return keras.ops.cast(inputs, "int32")
