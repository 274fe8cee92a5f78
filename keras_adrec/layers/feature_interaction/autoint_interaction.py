"""AutoInt's interacting layers, on the Ad-Rec input contract."""

import math
import numbers

import keras
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.feature_interaction.feature_inputs import (
    parse_feature_shape,
)
from keras_adrec.layers.feature_interaction.feature_inputs import stack_features
from keras_adrec.utils.keras_utils import clone_initializer


@keras_adrec_export
class AutoIntInteraction(keras.layers.Layer):
    """A stack of AutoInt interacting layers over the N+1 feature vectors.

    Each interacting layer follows Song et al. 2019, eq. 5-8. For every
    feature m, head h and key feature k (all F = N+1 features, no mask):

    - `psi_h(e_m, e_k) = <W_Q^h e_m, W_K^h e_k>` (divided by
      `sqrt(key_dim)` when `use_scaling`), `alpha_h(m, k)` its softmax
      over k (eq. 5);
    - `e~_m^h = sum_k alpha_h(m, k) W_V^h e_k` (eq. 6), heads
      concatenated: `e~_m = e~_m^1 (+) ... (+) e~_m^H` (eq. 7);
    - `e_m^Res = ReLU(e~_m + W_Res e_m)` (eq. 8); without
      `use_residual`, `ReLU(e~_m)`.

    `W_Q^h, W_K^h, W_V^h` map the layer input (size D, then
    `H * key_dim` for later layers) to `key_dim`; `W_Res` maps it to
    `H * key_dim`. No biases, no output projection and no LayerNorm.
    This is why the layer does not use `keras.layers.MultiHeadAttention`:
    that one always scales the logits by `1/sqrt(key_dim)` and adds an
    output projection, neither of which is in the paper's equations.
    The authors' released TensorFlow code differs from the equations: it
    puts a ReLU on the Q, K, V and residual projections, scales the logits
    by `1/sqrt(key_dim)` and ends each layer with a LayerNorm. This layer
    follows the paper's equations, as the Ad-Rec paper's AutoInt baseline
    is described ("no LayerNorm"); `use_scaling=True` restores the scaling.

    The output is the flattened `e^Res` of the last layer; in the DLRM
    skeleton the top MLP reads it (with the dense vector in front, paper
    eq. 8) where AutoInt has a single logistic output layer.

    Args:
        num_layers: int. Number of interacting layers. Defaults to `1`.
        num_heads: int. Number of attention heads H. Defaults to `2`.
        key_dim: int or `None`. Size of each head's query, key and value
            vectors; `None` means `D // num_heads`. Defaults to `None`.
        use_residual: bool. Add the residual projection `W_Res e_m`
            (eq. 8). Defaults to `True`.
        use_scaling: bool. Divide the logits by `sqrt(key_dim)`, as the
            authors' code and the Transformer do. Defaults to `False`
            (the paper's eq. 5).
        dropout: float in `[0, 1)`. Dropout rate on the attention weights
            `alpha`, as in the authors' code. Defaults to `0.0`.
        kernel_initializer: str or `keras.initializers.Initializer`.
            Initializer of every projection matrix. Defaults to
            `"glorot_uniform"`.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: a list of N+1 tensors of shape `[B, D]` (the bottom-MLP
            output first, then the N embeddings), or one tensor of shape
            `[B, N+1, D]`.
        training: bool. Whether dropout is active. Defaults to `None`.

    Returns:
        A tensor of shape `[B, (N+1) * num_heads * key_dim]`.

    Example:

    ```python
    features = [np.random.rand(8, 16) for _ in range(27)]
    autoint = keras_adrec.layers.AutoIntInteraction(num_heads=2)
    outputs = autoint(features)  # [8, 27 * 2 * 8]
    ```

    References:
    - [W. Song et al., 2019. AutoInt: Automatic Feature Interaction
      Learning via Self-Attentive Neural Networks](
      https://arxiv.org/abs/1810.11921), eq. 5-8.
    """

    def __init__(
        self,
        num_layers=1,
        num_heads=2,
        key_dim=None,
        use_residual=True,
        use_scaling=False,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg_name, value in (
            ("num_layers", num_layers),
            ("num_heads", num_heads),
        ):
            if isinstance(value, bool) or not isinstance(
                value, numbers.Integral
            ):
                raise ValueError(
                    f"`{arg_name}` must be a positive int. "
                    f"Received: {arg_name}={value}"
                )
            if value < 1:
                raise ValueError(
                    f"`{arg_name}` must be positive. "
                    f"Received: {arg_name}={value}"
                )
        if key_dim is not None and (
            isinstance(key_dim, bool)
            or not isinstance(key_dim, numbers.Integral)
            or key_dim < 1
        ):
            raise ValueError(
                "`key_dim` must be `None` or a positive int. "
                f"Received: key_dim={key_dim}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.key_dim = None if key_dim is None else int(key_dim)
        self.use_residual = bool(use_residual)
        self.use_scaling = bool(use_scaling)
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        _, num_features, feature_dim = parse_feature_shape(
            input_shape, self.__class__.__name__
        )
        key_dim = self.key_dim
        if key_dim is None:
            key_dim = feature_dim // self.num_heads
            if key_dim == 0:
                raise ValueError(
                    "`key_dim=None` means `D // num_heads`, which is 0 for "
                    f"D={feature_dim} and num_heads={self.num_heads}. Use "
                    "fewer heads or pass `key_dim`."
                )
        self._num_features = num_features
        self._key_dim = key_dim
        width = self.num_heads * key_dim
        self.query_kernels = []
        self.key_kernels = []
        self.value_kernels = []
        self.residual_kernels = []
        input_dim = feature_dim
        for index in range(self.num_layers):
            for kernels, kind in (
                (self.query_kernels, "query"),
                (self.key_kernels, "key"),
                (self.value_kernels, "value"),
            ):
                kernels.append(self._add_kernel(kind, index, input_dim, width))
            if self.use_residual:
                self.residual_kernels.append(
                    self._add_kernel("residual", index, input_dim, width)
                )
            input_dim = width
        if self.dropout > 0:
            self.attention_dropout = keras.layers.Dropout(
                self.dropout,
                dtype=self.dtype_policy,
                name="attention_dropout",
            )

    def _add_kernel(self, kind, index, input_dim, width):
        return self.add_weight(
            name=f"{kind}_kernel_{index}",
            shape=(input_dim, width),
            initializer=clone_initializer(self.kernel_initializer),
        )

    def _split_heads(self, x):
        return ops.reshape(
            x, (-1, self._num_features, self.num_heads, self._key_dim)
        )

    def call(self, inputs, training=None):
        x = stack_features(inputs)
        width = self.num_heads * self._key_dim
        for index in range(self.num_layers):
            query = self._split_heads(ops.matmul(x, self.query_kernels[index]))
            key = self._split_heads(ops.matmul(x, self.key_kernels[index]))
            value = self._split_heads(ops.matmul(x, self.value_kernels[index]))
            logits = ops.einsum("bmhd,bkhd->bhmk", query, key)
            if self.use_scaling:
                logits = logits / math.sqrt(self._key_dim)
            # Softmax in float32, so that mixed precision keeps its accuracy.
            weights = ops.cast(
                ops.softmax(ops.cast(logits, "float32"), axis=-1),
                self.compute_dtype,
            )
            if self.dropout > 0:
                weights = self.attention_dropout(weights, training=training)
            attended = ops.einsum("bhmk,bkhd->bmhd", weights, value)
            attended = ops.reshape(attended, (-1, self._num_features, width))
            if self.use_residual:
                attended = attended + ops.matmul(
                    x, self.residual_kernels[index]
                )
            x = ops.relu(attended)
        return ops.reshape(x, (-1, self._num_features * width))

    def compute_output_shape(self, input_shape):
        batch_size, num_features, feature_dim = parse_feature_shape(
            input_shape, self.__class__.__name__
        )
        key_dim = self.key_dim or feature_dim // self.num_heads
        return (batch_size, num_features * self.num_heads * key_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "use_residual": self.use_residual,
                "use_scaling": self.use_scaling,
                "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
