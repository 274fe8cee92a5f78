"""Multi-head attention of the candidate event over the history events."""

import keras
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.sequence.sequence_inputs import check_positive_int
from keras_adrec.layers.sequence.sequence_inputs import check_rate
from keras_adrec.layers.sequence.sequence_inputs import parse_sequence_shapes
from keras_adrec.utils.keras_utils import clone_initializer


@keras_adrec_export
class MultiHeadAttentionContext(keras.layers.Layer):
    """The candidate queries the history with multi-head attention.

    The candidate `z_tau` is the single query; the history events
    `z_1..z_{tau-1}` are the keys and the values:

    `c = MHA(query=z_tau, key=Z, value=Z)`, with, per head h,
    `softmax((W_Q^h z_tau) . (W_K^h z_t) / sqrt(key_dim))` over the history
    steps t, the weighted sum of `W_V^h z_t`, and the heads concatenated
    and projected to `output_dim` (`keras.layers.MultiHeadAttention`).

    TBSM's `mha` model type does the same with head size W (`key_dim`
    defaults to W here) and 8 heads by default. Two differences from the
    released TBSM code: there the attention module is created anew, with
    fresh random weights, in every forward pass (so only the Q/K/V
    projections in front of it train), and its output width is
    `num_heads * W`; here every weight trains and the output width is
    `output_dim` (W by default).

    Args:
        num_heads: int. Number of attention heads. Defaults to `8`
            (TBSM's `--mha-num-heads`).
        key_dim: int or `None`. Size of each head's query and key (and
            value); `None` means the event width W. Defaults to `None`.
        output_dim: int or `None`. Width of the context; `None` means W.
            Defaults to `None`.
        dropout: float in `[0, 1)`. Dropout on the attention weights.
            Defaults to `0.0`.
        use_bias: bool. Biases in the projections. Defaults to `True`.
        kernel_initializer: str or `keras.initializers.Initializer`.
            Defaults to `"glorot_uniform"`.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        candidate: tensor of shape `[B, W]`, the candidate event `z_tau`.
        history: tensor of shape `[B, T-1, W]`, the earlier events.
        training: bool. Whether dropout is active. Defaults to `None`.

    Returns:
        The context, a tensor of shape `[B, output_dim]`.

    Example:

    ```python
    mha = keras_adrec.layers.MultiHeadAttentionContext(num_heads=2)
    context = mha(np.random.rand(8, 15), np.random.rand(8, 20, 15))
    # context.shape == (8, 15)
    ```

    References:
    - [A. Vaswani et al., 2017. Attention Is All You Need](
      https://arxiv.org/abs/1706.03762), section 3.2.
    - [T. Ishkhanov et al., 2020. Time-based Sequence Model for
      Personalization and Recommendation Systems](
      https://arxiv.org/abs/2008.11922) (the `mha` model type).
    - Adnan et al., "Ad-Rec", NeurIPS 2023 ML for Systems, appendix A.2,
      eq. 12 (RM5).
    """

    def __init__(
        self,
        num_heads=8,
        key_dim=None,
        output_dim=None,
        dropout=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.key_dim = check_positive_int("key_dim", key_dim, allow_none=True)
        self.output_dim = check_positive_int(
            "output_dim", output_dim, allow_none=True
        )
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, candidate_shape, history_shape):
        _, width = parse_sequence_shapes(
            candidate_shape, history_shape, self.__class__.__name__
        )
        self._output_dim = self.output_dim or width
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self.key_dim or width,
            output_shape=self._output_dim,
            dropout=self.dropout,
            use_bias=self.use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="attention",
        )
        self.attention.build(
            (candidate_shape[0], 1, width), tuple(history_shape)
        )

    def call(self, candidate, history, training=None):
        query = ops.expand_dims(candidate, axis=1)
        context = self.attention(query, history, history, training=training)
        return ops.squeeze(context, axis=1)

    def compute_output_shape(self, candidate_shape, history_shape):
        return (candidate_shape[0], self.output_dim or candidate_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "output_dim": self.output_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
