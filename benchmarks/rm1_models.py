"""The RM1 model and input pipeline the throughput benchmarks time.

`benchmarks.training_throughput` times these models and
`benchmarks.step_profile` profiles the same ones, so both import them from
here: the library's interactions by name and two reference interactions
built from stock Keras and keras-rs layers (see `training_throughput`'s
docstring), SYNTHETIC preprocessed RM1 inputs and the repeated in-memory
pipeline.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_adrec.data import SyntheticCriteo  # noqa: E402
from keras_adrec.models import RankingModel  # noqa: E402
from keras_adrec.training import make_optimizer  # noqa: E402

# ----------------------------------------------------------------------
# Reference interactions, injected into RankingModel


class KerasMultiHeadAttentionBlock(keras.layers.Layer):
    """Pre-LN transformer block from stock Keras layers, then flatten.

    `z = z + Dropout(MHA(LN(z)))`, `z = z + Dropout(FFN(LN(z)))`, output
    `flatten(z)`: the Ad-Rec block's shape without the threshold mask.

    Args:
        num_heads: int. Attention heads.
        ffn_dim: int. Hidden width of the feed-forward network.
        dropout: float. Dropout rate of both residual branches.
        inner_dropout: bool. Also drop out attention probabilities and the
            FFN hidden layer, as `torch.nn.TransformerEncoderLayer` does.

    Call arguments:
        inputs: float `[B, N+1, D]`.
        training: bool. Whether dropout is active.

    Returns:
        float `[B, (N+1) * D]`.
    """

    def __init__(
        self,
        num_heads=2,
        ffn_dim=128,
        dropout=0.01,
        inner_dropout=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads < 1:
            raise ValueError(
                f"`num_heads` must be positive. Received: num_heads={num_heads}"
            )
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.inner_dropout = inner_dropout

    def build(self, input_shape):
        _, tokens, dim = input_shape
        inner = self.dropout if self.inner_dropout else 0.0
        self.attention_norm = keras.layers.LayerNormalization(
            name="attention_norm", dtype=self.dtype_policy
        )
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=dim // self.num_heads,
            dropout=inner,
            name="attention",
            dtype=self.dtype_policy,
        )
        self.attention_dropout = keras.layers.Dropout(
            self.dropout, name="attention_dropout"
        )
        self.ffn_norm = keras.layers.LayerNormalization(
            name="ffn_norm", dtype=self.dtype_policy
        )
        self.ffn_hidden = keras.layers.Dense(
            self.ffn_dim,
            activation="relu",
            name="ffn_hidden",
            dtype=self.dtype_policy,
        )
        self.ffn_hidden_dropout = keras.layers.Dropout(
            inner, name="ffn_hidden_dropout"
        )
        self.ffn_output = keras.layers.Dense(
            dim, name="ffn_output", dtype=self.dtype_policy
        )
        self.ffn_dropout = keras.layers.Dropout(
            self.dropout, name="ffn_dropout"
        )
        shape = (None, tokens, dim)
        self.attention_norm.build(shape)
        self.attention.build(shape, shape)
        self.ffn_norm.build(shape)
        self.ffn_hidden.build(shape)
        self.ffn_output.build((None, tokens, self.ffn_dim))
        self._flat = tokens * dim

    def call(self, inputs, training=None):
        x = self.attention_norm(inputs)
        x = self.attention(x, x, training=training)
        z = inputs + self.attention_dropout(x, training=training)
        x = self.ffn_hidden(self.ffn_norm(z))
        if self.inner_dropout:
            x = self.ffn_hidden_dropout(x, training=training)
        x = self.ffn_output(x)
        z = z + self.ffn_dropout(x, training=training)
        return keras.ops.reshape(z, (-1, self._flat))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] * input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "ffn_dim": self.ffn_dim,
                "dropout": self.dropout,
                "inner_dropout": self.inner_dropout,
            }
        )
        return config


class KerasRSCrossNetwork(keras.layers.Layer):
    """DCN-v2 cross network of `keras_rs.layers.FeatureCross` layers.

    As keras-rs's DCN example: the input vectors are concatenated into
    `x0`, then `x_{l+1} = FeatureCross()(x0, x_l)`; returns `x_L`.

    Args:
        num_layers: int. FeatureCross layers.
        projection_dim: int or None. Low-rank projection of each layer.

    Call arguments:
        inputs: float `[B, N+1, D]`.

    Returns:
        float `[B, (N+1) * D]`.
    """

    def __init__(self, num_layers=2, projection_dim=128, **kwargs):
        super().__init__(**kwargs)
        if num_layers < 1:
            raise ValueError(
                "`num_layers` must be positive. "
                f"Received: num_layers={num_layers}"
            )
        self.num_layers = num_layers
        self.projection_dim = projection_dim

    def build(self, input_shape):
        import keras_rs

        self._flat = input_shape[1] * input_shape[2]
        self.crosses = []
        for i in range(self.num_layers):
            cross = keras_rs.layers.FeatureCross(
                projection_dim=self.projection_dim,
                name=f"feature_cross_{i}",
                dtype=self.dtype_policy,
            )
            cross.build((None, self._flat))
            self.crosses.append(cross)

    def call(self, inputs):
        x0 = keras.ops.reshape(inputs, (-1, self._flat))
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] * input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "projection_dim": self.projection_dim,
            }
        )
        return config


def make_interaction(name, fields):
    """A name of the library's table, or a reference layer instance."""
    if name in ("keras-mha", "keras-mha-inner"):
        return KerasMultiHeadAttentionBlock(
            num_heads=fields.num_heads,
            ffn_dim=fields.ffn_dim,
            dropout=fields.dropout,
            inner_dropout=name == "keras-mha-inner",
            name="interaction",
        )
    if name == "keras-rs-dcn":
        return KerasRSCrossNetwork(
            num_layers=fields.cross_layers,
            projection_dim=fields.cross_projection_dim,
            name="interaction",
        )
    return name


# ----------------------------------------------------------------------
# Inputs and models


def synthetic_inputs(rows, seed=0):
    """SYNTHETIC preprocessed RM1 inputs: ids, dense, labels, vocabulary."""
    generator = SyntheticCriteo(rows_per_day=rows, num_days=1, seed=seed)
    chunk = generator.generate(0)
    dense = np.nan_to_num(chunk["dense"], nan=0.0)
    features = {
        "dense": np.log1p(np.maximum(dense, 0.0)).astype("float32"),
        "sparse": (chunk["ids"] + 1).astype("int32"),  # 0 = missing
    }
    vocabulary_sizes = [c + 1 for c in generator.cardinalities]
    return features, chunk["label"], vocabulary_sizes, generator.get_config()


def make_model(name, fields, vocabulary_sizes, num_dense, jit):
    """A compiled RM1 model with interaction `name`."""
    model = RankingModel.from_preset(
        fields,
        vocabulary_sizes=vocabulary_sizes,
        num_dense=num_dense,
        interaction=make_interaction(name, fields),
    )
    model.compile(
        optimizer=make_optimizer(fields.optimizer, fields.learning_rate),
        loss="binary_crossentropy",
        jit_compile=jit,
    )
    return model


def training_dataset(features, labels, batch_size):
    """The repeated in-memory training pipeline every run uses."""
    return (
        tf.data.Dataset.from_tensor_slices((features, labels))
        .batch(batch_size, drop_remainder=True)
        .cache()
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
