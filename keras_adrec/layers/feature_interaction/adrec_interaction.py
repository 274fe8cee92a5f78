"""Ad-Rec feature interaction: a stack of masked transformer layers."""

import keras
import numpy as np
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.attention.mask_rules import DEFAULT_MASK_RULE
from keras_adrec.layers.attention.mask_rules import DEFAULT_MIN_KEYS
from keras_adrec.layers.blocks.adrec_block import AdRecBlock


@keras_adrec_export
class AdRecInteraction(keras.layers.Layer):
    """Ad-Rec interaction over the bottom-MLP vector and the embeddings.

    The `N + 1` feature vectors (the bottom-MLP output first, then the `N`
    embeddings) form the token sequence `z0` of shape `(B, N + 1, dim)`.
    `num_layers` `keras_adrec.layers.AdRecBlock`s turn it into `z_L`, and
    the layer returns `flatten(z_L)`. Concatenating the dense vector in
    front (paper eq. 8) is the model's job, not this layer's.

    Args:
        num_layers: int. Number of stacked Ad-Rec blocks. Defaults to `1`.
        num_heads: int. Attention heads per block; must divide `dim`.
            Defaults to `2`.
        ffn_dim: int. Feed-forward hidden width. Defaults to `128`.
        mask_thresholds: `"geometric"`, a list of `num_heads` floats in
            [0, 1), or `None` (no mask). Defaults to `"geometric"`.
        dropout: float in [0, 1). Residual dropout. Defaults to `0.01`.
        norm_first: bool. Pre-LayerNorm (paper) or post-LayerNorm
            (released code). Defaults to `True`.
        use_layer_norm: bool. Whether to apply LayerNorm. Defaults to `True`.
        positional_embedding: bool or `"sinusoidal"`. `True` adds a
            learned `(N + 1, dim)` position embedding before the blocks
            (paper ablation D.1, eq. 17); `"sinusoidal"` adds the fixed
            sine/cosine table of `sinusoidal_positions` instead.
            Defaults to `False`.
        activation: feed-forward activation. Defaults to `"relu"`.
        attention_dropout: float in [0, 1). Dropout on the attention
            weights. Defaults to `0.0`.
        layer_norm_epsilon: float. LayerNorm epsilon. Defaults to `1e-5`.
        kernel_initializer: initializer of every kernel and of the position
            embedding. Defaults to `"glorot_uniform"`.
        seed: int or `None`. Seed of the dropout masks; block `i` uses
            `seed + i`. Defaults to `None`.
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
        inputs: a list of `N + 1` tensors of shape `(B, dim)`, or one tensor
            of shape `(B, N + 1, dim)`.
        training: bool. Whether dropout is active.

    Returns:
        A tensor of shape `(B, (N + 1) * dim)`.

    Example:

    >>> interaction = keras_adrec.layers.AdRecInteraction(
    ...     num_heads=2, ffn_dim=128)
    >>> features = [keras.random.normal((4, 16)) for _ in range(27)]
    >>> interaction(features).shape
    (4, 432)

    References:
        - Ad-Rec: Advanced Feature Interactions to Address Covariate-Shifts
          in Recommendation Networks (NeurIPS 2023 ML for Systems),
          eq. 6-8, appendix D.1.
    """

    def __init__(
        self,
        num_layers=1,
        num_heads=2,
        ffn_dim=128,
        mask_thresholds="geometric",
        dropout=0.01,
        norm_first=True,
        use_layer_norm=True,
        positional_embedding=False,
        activation="relu",
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        seed=None,
        mask_rule=DEFAULT_MASK_RULE,
        min_keys=DEFAULT_MIN_KEYS,
        mask_warmup_steps=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            isinstance(num_layers, bool)
            or not isinstance(num_layers, int)
            or num_layers <= 0
        ):
            raise ValueError(
                "`num_layers` must be a positive integer. "
                f"Received: num_layers={num_layers}"
            )
        if not (
            isinstance(positional_embedding, bool)
            or positional_embedding == "sinusoidal"
        ):
            raise ValueError(
                "`positional_embedding` must be a bool or 'sinusoidal'. "
                f"Received: positional_embedding={positional_embedding}"
            )
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.norm_first = norm_first
        self.use_layer_norm = use_layer_norm
        self.positional_embedding = positional_embedding
        self.activation = keras.activations.get(activation)
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        # Blocks validate their own arguments; create them now so that bad
        # arguments raise here, not at the first call.
        self.blocks = [
            AdRecBlock(
                num_heads=num_heads,
                ffn_dim=ffn_dim,
                mask_thresholds=mask_thresholds,
                dropout=dropout,
                norm_first=norm_first,
                use_layer_norm=use_layer_norm,
                activation=activation,
                attention_dropout=attention_dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=kernel_initializer,
                seed=None if seed is None else seed + index,
                mask_rule=mask_rule,
                min_keys=min_keys,
                mask_warmup_steps=mask_warmup_steps,
                name=f"block_{index}",
                dtype=self.dtype_policy,
            )
            for index in range(num_layers)
        ]
        self.mask_thresholds = self.blocks[0].mask_thresholds
        self.mask_rule = self.blocks[0].mask_rule
        self.min_keys = self.blocks[0].min_keys
        self.mask_warmup_steps = self.blocks[0].mask_warmup_steps
        self.position_embedding = None

    def _sequence_shape(self, input_shape):
        if (
            isinstance(input_shape, (list, tuple))
            and input_shape
            and isinstance(input_shape[0], (list, tuple))
        ):
            shapes = [tuple(shape) for shape in input_shape]
            for shape in shapes:
                if len(shape) != 2 or shape[-1] != shapes[0][-1]:
                    raise ValueError(
                        "`AdRecInteraction` expects a list of tensors of "
                        "shape (batch, dim), all with the same dim. "
                        f"Received: input_shape={input_shape}"
                    )
            return (shapes[0][0], len(shapes), shapes[0][-1])
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(
                "`AdRecInteraction` expects a list of (batch, dim) tensors "
                "or one tensor of shape (batch, tokens, dim). "
                f"Received: input_shape={input_shape}"
            )
        return shape

    def build(self, input_shape):
        sequence_shape = self._sequence_shape(input_shape)
        if sequence_shape[1] is None or sequence_shape[2] is None:
            raise ValueError(
                "The number of tokens and their size must be known. "
                f"Received: input_shape={input_shape}"
            )
        if self.positional_embedding == "sinusoidal":
            self.position_embedding = sinusoidal_positions(*sequence_shape[1:])
        elif self.positional_embedding:
            self.position_embedding = self.add_weight(
                shape=sequence_shape[1:],
                initializer=self.kernel_initializer.__class__.from_config(
                    self.kernel_initializer.get_config()
                ),
                name="position_embedding",
            )
        for block in self.blocks:
            block.build(sequence_shape)

    def _tokens(self, inputs):
        if isinstance(inputs, (list, tuple)):
            z = ops.stack(inputs, axis=1)
        else:
            z = inputs
        if self.position_embedding is not None:
            z = z + ops.cast(self.position_embedding, z.dtype)
        return z

    def call(self, inputs, training=None):
        z = self._tokens(inputs)
        for block in self.blocks:
            z = block(z, training=training)
        num_tokens, dim = z.shape[1], z.shape[2]
        return ops.reshape(z, (-1, num_tokens * dim))

    def attention_maps(self, inputs):
        """Per-block first-pass and masked attention probabilities.

        Runs the blocks in inference mode and records, for each block, the
        probabilities before and after the threshold mask.

        Args:
            inputs: as in `call`.

        Returns:
            A list with one dict per block, with keys `"unmasked"` and
            `"masked"`, each a float32 tensor of shape
            `(B, num_heads, N + 1, N + 1)`.
        """
        if not self.built:
            if isinstance(inputs, (list, tuple)):
                self.build([tuple(x.shape) for x in inputs])
            else:
                self.build(tuple(inputs.shape))
        z = self._tokens(inputs)
        maps = []
        for block in self.blocks:
            maps.append(block.attention_maps(z))
            z = block(z, training=False)
        return maps

    def mask_diagnostics(self, inputs):
        """Per-block, per-head keep statistics, in inference mode.

        Args:
            inputs: as in `call`.

        Returns:
            A list with one dict per block, as returned by
            `keras_adrec.layers.MaskedMultiHeadAttention.mask_diagnostics`:
            `"mean_kept_keys"`, `"single_key_fraction"` and `"thresholds"`,
            each a numpy array of shape `(num_heads,)`.
        """
        if not self.built:
            if isinstance(inputs, (list, tuple)):
                self.build([tuple(x.shape) for x in inputs])
            else:
                self.build(tuple(inputs.shape))
        z = self._tokens(inputs)
        result = []
        for block in self.blocks:
            result.append(block.mask_diagnostics(z))
            z = block(z, training=False)
        return result

    def compute_output_shape(self, input_shape):
        batch, num_tokens, dim = self._sequence_shape(input_shape)
        return (batch, num_tokens * dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
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
                "positional_embedding": self.positional_embedding,
                "activation": keras.activations.serialize(self.activation),
                "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "seed": self.seed,
                "mask_rule": self.mask_rule,
                "min_keys": self.min_keys,
                "mask_warmup_steps": self.mask_warmup_steps,
            }
        )
        return config


def sinusoidal_positions(num_positions, dim):
    """The fixed sine/cosine position table of "Attention Is All You Need"
    (section 3.5): `P[t, 2i] = sin(t / 10000^(2i / dim))` and
    `P[t, 2i + 1] = cos(t / 10000^(2i / dim))`.

    Args:
        num_positions: int. Rows of the table (tokens).
        dim: int. Columns (the token width).

    Returns:
        A float32 numpy array of shape `(num_positions, dim)`.
    """
    positions = np.arange(num_positions, dtype="float64")[:, None]
    pairs = np.arange(0, dim, 2, dtype="float64")
    angles = positions / np.power(10000.0, pairs / dim)
    table = np.zeros((num_positions, dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : dim // 2])
    return table.astype("float32")
