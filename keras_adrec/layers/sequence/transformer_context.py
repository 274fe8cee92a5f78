"""A transformer encoder over the history and the candidate events."""

import keras
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.sequence.sequence_inputs import check_choice
from keras_adrec.layers.sequence.sequence_inputs import check_positive_int
from keras_adrec.layers.sequence.sequence_inputs import check_rate
from keras_adrec.layers.sequence.sequence_inputs import parse_sequence_shapes
from keras_adrec.utils.keras_utils import clone_initializer

POOLINGS = ("candidate", "mean")


@keras_adrec_export
class TransformerContext(keras.layers.Layer):
    """Transformer encoder layers over `[z_1; ...; z_{tau-1}; z_tau]`.

    The history events and the candidate form one sequence of T vectors,
    which `num_layers` transformer encoder layers process with full
    (unmasked) self-attention, in the manner of the Behavior Sequence
    Transformer. Each layer is, with `norm_first=False` (the original
    post-LayerNorm transformer),

    `x = LN(x + Dropout(MHA(x, x)))`, then `x = LN(x + Dropout(FFN(x)))`,

    and with `norm_first=True` (pre-LayerNorm, as Ad-Rec's blocks)
    `x = x + Dropout(MHA(LN(x)))`, then `x = x + Dropout(FFN(LN(x)))`,
    where `FFN = Dense(ffn_dim, activation) -> Dense(W)`. No positional
    embedding is added (the event model already reads the time as a dense
    feature). The context is the output at the candidate's position
    (`pooling="candidate"`, the default), which has attended over every
    history event, or the mean over all T positions (`pooling="mean"`).

    Args:
        num_layers: int. Number of encoder layers. Defaults to `1`.
        num_heads: int. Attention heads per layer. Defaults to `2`.
        key_dim: int or `None`. Size of each head's query, key and value;
            `None` means `ceil(W / num_heads)` (W = 15 is odd). Defaults to
            `None`.
        ffn_dim: int. Hidden size of the feed-forward network. Defaults to
            `128`.
        dropout: float in `[0, 1)`. Dropout on the attention weights and
            on both residual branches. Defaults to `0.0`.
        norm_first: bool. Pre-LayerNorm instead of post-LayerNorm.
            Defaults to `False`.
        pooling: str. `"candidate"` or `"mean"`. Defaults to
            `"candidate"`.
        activation: str or callable. Activation inside the FFN. Defaults
            to `"relu"`.
        kernel_initializer: str or `keras.initializers.Initializer`.
            Defaults to `"glorot_uniform"`.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        candidate: tensor of shape `[B, W]`, the candidate event `z_tau`.
        history: tensor of shape `[B, T-1, W]`, the earlier events.
        training: bool. Whether dropout is active. Defaults to `None`.

    Returns:
        The context, a tensor of shape `[B, W]`.

    Example:

    ```python
    encoder = keras_adrec.layers.TransformerContext(num_heads=3)
    context = encoder(np.random.rand(8, 15), np.random.rand(8, 20, 15))
    # context.shape == (8, 15)
    ```

    References:
    - [A. Vaswani et al., 2017. Attention Is All You Need](
      https://arxiv.org/abs/1706.03762), section 3.1.
    - [Q. Chen et al., 2019. Behavior Sequence Transformer for E-commerce
      Recommendation in Alibaba](https://arxiv.org/abs/1905.06874).
    - Adnan et al., "Ad-Rec", NeurIPS 2023 ML for Systems, appendix A.2,
      eq. 12 (RM7).
    """

    def __init__(
        self,
        num_layers=1,
        num_heads=2,
        key_dim=None,
        ffn_dim=128,
        dropout=0.0,
        norm_first=False,
        pooling="candidate",
        activation="relu",
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.key_dim = check_positive_int("key_dim", key_dim, allow_none=True)
        self.ffn_dim = check_positive_int("ffn_dim", ffn_dim)
        self.dropout = check_rate("dropout", dropout)
        self.norm_first = bool(norm_first)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, candidate_shape, history_shape):
        history_length, width = parse_sequence_shapes(
            candidate_shape, history_shape, self.__class__.__name__
        )
        key_dim = self.key_dim or -(-width // self.num_heads)
        length = None if history_length is None else history_length + 1
        shape = (candidate_shape[0], length, width)
        self.attention_layers = []
        self.attention_norms = []
        self.ffn_hidden_layers = []
        self.ffn_output_layers = []
        self.ffn_norms = []
        for index in range(self.num_layers):
            attention = keras.layers.MultiHeadAttention(
                num_heads=self.num_heads,
                key_dim=key_dim,
                dropout=self.dropout,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name=f"attention_{index}",
            )
            attention.build(shape, shape)
            hidden = keras.layers.Dense(
                self.ffn_dim,
                activation=self.activation,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name=f"ffn_hidden_{index}",
            )
            hidden.build(shape)
            output = keras.layers.Dense(
                width,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name=f"ffn_output_{index}",
            )
            output.build(shape[:-1] + (self.ffn_dim,))
            self.attention_layers.append(attention)
            self.ffn_hidden_layers.append(hidden)
            self.ffn_output_layers.append(output)
            for norms, kind in (
                (self.attention_norms, "attention"),
                (self.ffn_norms, "ffn"),
            ):
                norm = keras.layers.LayerNormalization(
                    epsilon=1e-5,
                    dtype=self.dtype_policy,
                    name=f"{kind}_norm_{index}",
                )
                norm.build(shape)
                norms.append(norm)
        if self.dropout > 0:
            self.residual_dropout = keras.layers.Dropout(
                self.dropout, dtype=self.dtype_policy, name="residual_dropout"
            )

    def _drop(self, x, training):
        if self.dropout > 0:
            return self.residual_dropout(x, training=training)
        return x

    def _attend(self, index, x, training):
        return self.attention_layers[index](x, x, x, training=training)

    def _feed_forward(self, index, x):
        return self.ffn_output_layers[index](self.ffn_hidden_layers[index](x))

    def call(self, candidate, history, training=None):
        x = ops.concatenate(
            [history, ops.expand_dims(ops.cast(candidate, history.dtype), 1)],
            axis=1,
        )
        for index in range(self.num_layers):
            attention_norm = self.attention_norms[index]
            ffn_norm = self.ffn_norms[index]
            if self.norm_first:
                attended = self._attend(index, attention_norm(x), training)
                x = x + self._drop(attended, training)
                x = x + self._drop(
                    self._feed_forward(index, ffn_norm(x)), training
                )
            else:
                attended = self._attend(index, x, training)
                x = attention_norm(x + self._drop(attended, training))
                x = ffn_norm(
                    x + self._drop(self._feed_forward(index, x), training)
                )
        if self.pooling == "mean":
            return ops.mean(x, axis=1)
        return x[:, -1, :]

    def compute_output_shape(self, candidate_shape, history_shape):
        return tuple(candidate_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "ffn_dim": self.ffn_dim,
                "dropout": self.dropout,
                "norm_first": self.norm_first,
                "pooling": self.pooling,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
