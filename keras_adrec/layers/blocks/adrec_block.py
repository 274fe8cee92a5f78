"""One Ad-Rec layer: masked self-attention and a feed-forward network."""

import keras
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.attention.mask_rules import DEFAULT_MASK_RULE
from keras_adrec.layers.attention.mask_rules import DEFAULT_MIN_KEYS
from keras_adrec.layers.attention.masked_multi_head_attention import (
    MaskedMultiHeadAttention,
)
from keras_adrec.layers.attention.stateless_dropout import stateless_dropout
from keras_adrec.layers.blocks.fused_layer_norm import layer_norm


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value}"
        )
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"`{name}` must be in [0, 1). Received: {name}={value}"
        )


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value}"
        )


@keras_adrec_export
class AdRecBlock(keras.layers.Layer):
    """Masked transformer layer of Ad-Rec over a sequence of feature tokens.

    Pre-LayerNorm form (paper eq. 6-7, `norm_first=True`):
    `z = z + Dropout(MaskedMSA(LN(z)))`, then
    `z = z + Dropout(FFN(LN(z)))`, with `FFN = Dense(ffn_dim, activation)`
    followed by `Dense(dim)`. Post-LayerNorm form (the authors' released
    code, `norm_first=False`): `z = LN(z + Dropout(MaskedMSA(z)))`, then
    `z = LN(z + Dropout(FFN(z)))`. `use_layer_norm=False` replaces every
    LayerNorm by the identity (paper Table 3 ablation).

    The residual dropout draws its mask with `stateless_dropout` (a counter
    hash on TensorFlow), which stays fast under `jit_compile=True` on CPU,
    where a `keras.layers.Dropout` costs tens to hundreds of milliseconds
    per step.
    It is inverted dropout with rate `dropout`, inactive at inference.

    Args:
        num_heads: int. Number of attention heads; must divide the token
            size `dim`, and each head has size `dim // num_heads`.
        ffn_dim: int. Hidden width of the feed-forward network.
        mask_thresholds: `"geometric"`, a list of `num_heads` floats in
            [0, 1), or `None` (no mask). See
            `keras_adrec.layers.MaskedMultiHeadAttention`.
            Defaults to `"geometric"`.
        dropout: float in [0, 1). Dropout on the attention and feed-forward
            outputs before each residual sum. Defaults to `0.01`.
        norm_first: bool. Pre-LayerNorm (`True`) or post-LayerNorm
            (`False`). Defaults to `True`.
        use_layer_norm: bool. Whether to apply LayerNorm at all.
            Defaults to `True`.
        activation: activation of the feed-forward hidden layer.
            Defaults to `"relu"`.
        attention_dropout: float in [0, 1). Dropout on the attention
            weights. Defaults to `0.0`.
        layer_norm_epsilon: float. LayerNorm epsilon. Defaults to `1e-5`.
        kernel_initializer: initializer of every kernel.
            Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of every bias. Defaults to `"zeros"`.
        seed: int or `None`. Seed of the dropout masks. Defaults to `None`.
        mask_rule: `"paper"` (keep `p > theta_h` and the argmax),
            `"relative"` (keep `p >= theta_h * max p`, at least `min_keys`
            keys) or `"straight_through"` (the paper's forward pass, the
            dense softmax's gradient); see
            `keras_adrec.layers.MaskedMultiHeadAttention`.
            Defaults to `"paper"`.
        min_keys: int. Keys the `"relative"` rule always keeps.
            Defaults to `2`.
        mask_warmup_steps: int. Training steps over which thresholds ramp
            up linearly from 0; `0` turns the warm-up off. Defaults to `0`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor of shape `(B, S, dim)`.
        attention_mask: optional boolean tensor of shape `(B, S, S)`.
        training: bool. Whether dropout is active.

    Returns:
        A tensor of shape `(B, S, dim)`.

    Example:

    >>> block = keras_adrec.layers.AdRecBlock(num_heads=2, ffn_dim=128)
    >>> block(keras.random.normal((4, 27, 16))).shape
    (4, 27, 16)

    References:
        - Ad-Rec: Advanced Feature Interactions to Address Covariate-Shifts
          in Recommendation Networks (NeurIPS 2023 ML for Systems), eq. 6-7.
    """

    def __init__(
        self,
        num_heads,
        ffn_dim,
        mask_thresholds="geometric",
        dropout=0.01,
        norm_first=True,
        use_layer_norm=True,
        activation="relu",
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        mask_rule=DEFAULT_MASK_RULE,
        min_keys=DEFAULT_MIN_KEYS,
        mask_warmup_steps=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive_int("num_heads", num_heads)
        _check_positive_int("ffn_dim", ffn_dim)
        _check_rate("dropout", dropout)
        _check_rate("attention_dropout", attention_dropout)
        if not isinstance(norm_first, bool):
            raise ValueError(
                "`norm_first` must be a bool. "
                f"Received: norm_first={norm_first}"
            )
        if not isinstance(use_layer_norm, bool):
            raise ValueError(
                "`use_layer_norm` must be a bool. "
                f"Received: use_layer_norm={use_layer_norm}"
            )
        if not layer_norm_epsilon > 0:
            raise ValueError(
                "`layer_norm_epsilon` must be positive. "
                f"Received: layer_norm_epsilon={layer_norm_epsilon}"
            )
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.mask_thresholds = MaskedMultiHeadAttention.resolve_mask_thresholds(
            mask_thresholds, num_heads
        )
        MaskedMultiHeadAttention.validate_mask_rule(
            mask_rule, min_keys, mask_warmup_steps
        )
        self.mask_rule = mask_rule
        self.min_keys = int(min_keys)
        self.mask_warmup_steps = int(mask_warmup_steps)
        self.dropout = dropout
        self.norm_first = norm_first
        self.use_layer_norm = use_layer_norm
        self.activation = keras.activations.get(activation)
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.seed_generator = (
            keras.random.SeedGenerator(seed) if dropout > 0 else None
        )
        self.supports_masking = False

    def _initializer(self, initializer):
        # A fresh copy, so that no two weights share initializer state.
        return initializer.__class__.from_config(initializer.get_config())

    def _layer_norm(self, name):
        if not self.use_layer_norm:
            return None
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            name=name,
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "`AdRecBlock` expects inputs of shape (batch, tokens, dim). "
                f"Received: input_shape={input_shape}"
            )
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(
                "The last input dimension must be known. "
                f"Received: input_shape={input_shape}"
            )
        if dim % self.num_heads != 0:
            raise ValueError(
                f"The token size dim={dim} must be divisible by "
                f"num_heads={self.num_heads}."
            )
        self.attention_layer = MaskedMultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=dim // self.num_heads,
            mask_thresholds=self.mask_thresholds,
            mask_rule=self.mask_rule,
            min_keys=self.min_keys,
            mask_warmup_steps=self.mask_warmup_steps,
            dropout=self.attention_dropout,
            kernel_initializer=self._initializer(self.kernel_initializer),
            bias_initializer=self._initializer(self.bias_initializer),
            seed=self.seed,
            name="attention",
            dtype=self.dtype_policy,
        )
        self.attention_layer.build(input_shape, input_shape)
        self.attention_norm = self._layer_norm("attention_norm")
        self.ffn_norm = self._layer_norm("ffn_norm")
        if self.use_layer_norm:
            self.attention_norm.build(input_shape)
            self.ffn_norm.build(input_shape)
        self.ffn_intermediate = keras.layers.Dense(
            self.ffn_dim,
            activation=self.activation,
            kernel_initializer=self._initializer(self.kernel_initializer),
            bias_initializer=self._initializer(self.bias_initializer),
            name="ffn_intermediate",
            dtype=self.dtype_policy,
        )
        self.ffn_intermediate.build((None, dim))
        self.ffn_output = keras.layers.Dense(
            dim,
            kernel_initializer=self._initializer(self.kernel_initializer),
            bias_initializer=self._initializer(self.bias_initializer),
            name="ffn_output",
            dtype=self.dtype_policy,
        )
        self.ffn_output.build((None, self.ffn_dim))

    def _dropout(self, inputs, training):
        if training and self.dropout > 0:
            return stateless_dropout(inputs, self.dropout, self.seed_generator)
        return inputs

    def _norm(self, layer, inputs):
        # The layer's function with a closed-form backward pass on
        # TensorFlow (`fused_layer_norm`); its weights are the layer's.
        return inputs if layer is None else layer_norm(layer, inputs)

    def _ffn(self, inputs):
        # Dense on a 3D tensor runs a broadcast batched matmul whose kernel
        # gradient is a batched matmul plus a sum; one 2D matmul over all
        # tokens is about twice as fast (fwd + bwd, TF graph mode on CPU).
        dim = inputs.shape[-1]
        tokens = ops.reshape(inputs, (-1, dim))
        outputs = self.ffn_output(self.ffn_intermediate(tokens))
        return ops.reshape(outputs, ops.shape(inputs))

    def call(self, inputs, attention_mask=None, training=None):
        z = inputs
        if self.norm_first or not self.use_layer_norm:
            h = self._norm(self.attention_norm, z)
            h = self.attention_layer(
                h, h, attention_mask=attention_mask, training=training
            )
            z = z + self._dropout(h, training)
            h = self._ffn(self._norm(self.ffn_norm, z))
            return z + self._dropout(h, training)
        h = self.attention_layer(
            z, z, attention_mask=attention_mask, training=training
        )
        z = self._norm(self.attention_norm, z + self._dropout(h, training))
        h = self._ffn(z)
        return self._norm(self.ffn_norm, z + self._dropout(h, training))

    def attention_maps(self, inputs, attention_mask=None):
        """First-pass and masked attention probabilities of this block.

        Args:
            inputs: tensor of shape `(B, S, dim)`, as passed to the block.
            attention_mask: optional boolean tensor of shape `(B, S, S)`.

        Returns:
            A dict with `"unmasked"` and `"masked"`, each float32 of shape
            `(B, num_heads, S, S)`.
        """
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if not self.built:
            self.build(inputs.shape)
        h = inputs
        if self.norm_first and self.use_layer_norm:
            h = self.attention_norm(h)
        return self.attention_layer.compute_attention_maps(
            h, h, attention_mask=attention_mask
        )

    def mask_diagnostics(self, inputs, attention_mask=None):
        """Per-head keep statistics of this block's attention.

        Args:
            inputs: tensor of shape `(B, S, dim)`, as passed to the block.
            attention_mask: optional boolean tensor of shape `(B, S, S)`.

        Returns:
            The dict of
            `keras_adrec.layers.MaskedMultiHeadAttention.mask_diagnostics`.
        """
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if not self.built:
            self.build(inputs.shape)
        h = inputs
        if self.norm_first and self.use_layer_norm:
            h = self.attention_norm(h)
        return self.attention_layer.mask_diagnostics(
            h, h, attention_mask=attention_mask
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "ffn_dim": self.ffn_dim,
                "mask_thresholds": (
                    None
                    if self.mask_thresholds is None
                    else list(self.mask_thresholds)
                ),
                "dropout": self.dropout,
                "norm_first": self.norm_first,
                "use_layer_norm": self.use_layer_norm,
                "activation": keras.activations.serialize(self.activation),
                "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "seed": self.seed,
                "mask_rule": self.mask_rule,
                "min_keys": self.min_keys,
                "mask_warmup_steps": self.mask_warmup_steps,
            }
        )
        return config
