"""Masked multi-head attention: Ad-Rec's per-head probability threshold."""

import keras
import numpy as np
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.attention import threshold_warmup
from keras_adrec.layers.attention.fused_projection import fused_output
from keras_adrec.layers.attention.fused_projection import fused_path_applies
from keras_adrec.layers.attention.fused_projection import fused_scores
from keras_adrec.layers.attention.mask_diagnostics import attention_maps
from keras_adrec.layers.attention.mask_diagnostics import head_gradient_norms
from keras_adrec.layers.attention.mask_diagnostics import keep_statistics
from keras_adrec.layers.attention.mask_rules import DEFAULT_MASK_RULE
from keras_adrec.layers.attention.mask_rules import DEFAULT_MIN_KEYS
from keras_adrec.layers.attention.mask_rules import MASK_RULES  # noqa: F401
from keras_adrec.layers.attention.mask_rules import check_mask_rule
from keras_adrec.layers.attention.mask_rules import get_mask_rule
from keras_adrec.layers.attention.mask_rules import resolve_mask_thresholds
from keras_adrec.layers.attention.stateless_dropout import stateless_dropout
from keras_adrec.layers.attention.threshold_softmax import at_least_float32
from keras_adrec.layers.attention.threshold_softmax import expand_attention_mask
from keras_adrec.layers.attention.threshold_softmax import masked_weights
from keras_adrec.layers.attention.threshold_softmax import threshold_softmax

# `MASK_RULES`, `DEFAULT_MASK_RULE` and `DEFAULT_MIN_KEYS` stay importable
# from this module, where code written before the split finds them.


@keras_adrec_export
class MaskedMultiHeadAttention(keras.layers.MultiHeadAttention):
    """Multi-head attention that keeps, per head, only probable keys.

    Ad-Rec's masked multi-head self-attention (paper eq. 1-4). For each head
    `h`, sample and query, the first-pass probabilities
    `p = softmax(q k^T / sqrt(key_dim))` decide which keys survive, and the
    attention weights are the kept probabilities renormalised,
    `a_j = p_j keep_j / sum_k p_k keep_k` (a softmax over the kept logits).
    `mask_rule` names the keep decision, one class each in
    `keras_adrec.layers.attention.mask_rules`:

    - `"paper"` (the default): `keep_j = p_j > theta_h or p_j = max_k p_k`.
      With `theta_h` well above `1 / S` for `S` keys most rows keep one
      key: weight exactly 1 and no gradient to the head's query and key
      kernels (hard argmax attention over the initial scores).
    - `"relative"`: `keep_j = p_j >= theta_h * max_k p_k`, or `p_j` among
      the `min_keys` largest. Dense while the scores are flat, sparse as
      the head sharpens. The ranking presets (RM1-RM3) use it, the winner
      of `benchmarks/mask_rules.md`.
    - `"straight_through"`: the `"paper"` forward pass; the backward pass
      of the dense softmax, `a = p + stop_gradient(a_paper - p)`.

    `mask_warmup_steps > 0` ramps every threshold as
    `theta_h(t) = theta_h * min(1, t / mask_warmup_steps)`, where `t` counts
    this layer's training calls (a non-trainable `mask_step` weight, saved
    with the model; see `threshold_warmup`). The keep decision carries no
    gradient. Both softmaxes run in float32, also under `mixed_float16`.
    The mask applies in training and at inference alike.

    A drop-in for `keras.layers.MultiHeadAttention`: the same arguments in
    the same order, the same call signature, input ranks and weights
    (`get_weights()` / `set_weights()` are interchangeable). With
    `mask_thresholds=None` every computation is Keras', so the outputs are
    equal. `mask_diagnostics` reports, per head, the kept keys and
    single-key rows (`keras_adrec.layers.attention.mask_diagnostics`).

    Args:
        num_heads: int. Number of attention heads `H`.
        key_dim: int. Size of each head for query and key.
        value_dim: int or `None`. Size of each head for value; `key_dim`
            if `None`. Defaults to `None`.
        dropout: float in [0, 1). Dropout on the attention weights.
            Defaults to `0.0`.
        use_bias: bool. Whether the projections have biases.
            Defaults to `True`.
        output_shape: int, tuple or `None`. Output shape besides the batch
            and attention axes; the query's last dimension if `None`.
        attention_axes: int, tuple or `None`. Axes attended over; every
            axis but batch, heads and features if `None`.
        sliding_window, flash_attention, kernel_initializer,
            bias_initializer, kernel_regularizer, bias_regularizer,
            activity_regularizer, kernel_constraint, bias_constraint,
            use_gate, seed: as in `keras.layers.MultiHeadAttention`.
            `flash_attention=True` needs `mask_thresholds=None`.
        mask_thresholds: keyword only. `"geometric"`, a list of `num_heads`
            floats in [0, 1), or `None`. `"geometric"` gives
            `[1e-1, 1e-2, ..., 1e-H]`, the paper's default; `None` turns the
            mask off. Defaults to `"geometric"`.
        mask_rule: keyword only. `"paper"`, `"relative"` or
            `"straight_through"`; see above. Defaults to `"paper"`.
        min_keys: keyword only. int >= 1. Keys the `"relative"` rule
            always keeps (the most probable ones). Defaults to `2`.
        mask_warmup_steps: keyword only. int >= 0. Training calls over
            which thresholds ramp up linearly from 0; `0` turns the warm-up
            off. Defaults to `0`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        query: tensor of shape `(B, T, dim)` (or `(B, ..., T, dim)`).
        value: tensor of shape `(B, S, dim)`.
        key: optional tensor of shape `(B, S, dim)`; `value` if omitted.
        query_mask, value_mask, key_mask: optional Keras masks, as in
            Keras (normally set by the inputs' masks).
        attention_mask: optional boolean tensor of shape `(B, T, S)`. `False`
            keys are excluded from the first softmax and never kept.
        return_attention_scores: bool. Also return the masked attention
            weights `a`, shape `(B, H, T, S)`.
        training: bool. Whether attention dropout is active.
        use_causal_mask: bool. Adds a causal mask, as in Keras.

    Returns:
        The attention output of shape `(B, T, dim)`, and with
        `return_attention_scores=True` also the masked weights.

    Example:

    >>> layer = keras_adrec.layers.MaskedMultiHeadAttention(
    ...     num_heads=2, key_dim=8, mask_thresholds=[0.1, 0.01])
    >>> tokens = keras.random.normal((4, 27, 16))
    >>> layer(tokens, tokens).shape
    (4, 27, 16)
    >>> layer.mask_diagnostics(tokens)["mean_kept_keys"].shape
    (2,)
    >>> relative = keras_adrec.layers.MaskedMultiHeadAttention(
    ...     num_heads=2, key_dim=8, mask_rule="relative")

    References:
        - Ad-Rec: Advanced Feature Interactions to Address Covariate-Shifts
          in Recommendation Networks (NeurIPS 2023 ML for Systems), eq. 1-4.
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        attention_axes=None,
        sliding_window=None,
        flash_attention=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        use_gate=False,
        seed=None,
        *,
        mask_thresholds="geometric",
        mask_rule=DEFAULT_MASK_RULE,
        min_keys=DEFAULT_MIN_KEYS,
        mask_warmup_steps=0,
        **kwargs,
    ):
        if isinstance(num_heads, bool) or not isinstance(num_heads, int):
            raise ValueError(
                "`num_heads` must be a positive integer. "
                f"Received: num_heads={num_heads}"
            )
        if num_heads <= 0:
            raise ValueError(
                f"`num_heads` must be positive. Received: num_heads={num_heads}"
            )
        if isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        thresholds = resolve_mask_thresholds(mask_thresholds, num_heads)
        self.validate_mask_rule(mask_rule, min_keys, mask_warmup_steps)
        if thresholds is not None and flash_attention:
            raise ValueError(
                "`flash_attention=True` cannot apply the threshold mask. "
                "Pass `mask_thresholds=None` or `flash_attention=False`. "
                f"Received: mask_thresholds={mask_thresholds}"
            )
        super().__init__(
            num_heads,
            key_dim,
            value_dim=value_dim,
            dropout=dropout,
            use_bias=use_bias,
            output_shape=output_shape,
            attention_axes=attention_axes,
            sliding_window=sliding_window,
            flash_attention=flash_attention,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            use_gate=use_gate,
            seed=seed,
            **kwargs,
        )
        if thresholds is not None:
            # A globally enabled flash attention must not reach the masked
            # path: it has no way to apply the threshold mask.
            self._flash_attention = False
        self.mask_thresholds = thresholds
        self.mask_rule = mask_rule
        self.min_keys = int(min_keys)
        self.mask_warmup_steps = int(mask_warmup_steps)
        self.mask_step = None

    @staticmethod
    def validate_mask_rule(mask_rule, min_keys, mask_warmup_steps):
        """Check `mask_rule`, `min_keys` and `mask_warmup_steps`.

        Raises:
            ValueError: naming the argument and the value.
        """
        check_mask_rule(mask_rule, min_keys)
        threshold_warmup.check_warmup_steps(mask_warmup_steps)

    @staticmethod
    def resolve_mask_thresholds(mask_thresholds, num_heads):
        """Turn a `mask_thresholds` argument into a list of floats or `None`.

        See `keras_adrec.layers.attention.mask_rules.resolve_mask_thresholds`.
        """
        return resolve_mask_thresholds(mask_thresholds, num_heads)

    @property
    def key_axes(self):
        """The axes of the attention scores that index keys (once built)."""
        return self._key_axes

    def _build_attention(self, rank):
        super()._build_attention(rank)
        # Scores have shape (B, <batch dims>, H, <query axes>, <key axes>).
        num_axes = len(self._attention_axes)
        scores_rank = rank + num_axes - 1
        self._key_axes = tuple(range(scores_rank - num_axes, scores_rank))
        self._rule = get_mask_rule(
            self.mask_rule, self._key_axes, self.min_keys
        )
        if self.mask_thresholds is not None:
            self._threshold_values = np.reshape(
                np.asarray(self.mask_thresholds, dtype="float64"),
                (self._num_heads,) + (1,) * (2 * num_axes),
            )
            if self.mask_warmup_steps > 0:
                self.mask_step = threshold_warmup.add_step_counter(self)

    def _thresholds(self, dtype):
        """Per-head thresholds at the current step, broadcastable to p."""
        return threshold_warmup.thresholds_at_step(
            self._threshold_values,
            self.mask_step,
            self.mask_warmup_steps,
            dtype,
        )

    def thresholds_in_use(self):
        """The `(num_heads,)` float64 thresholds at the current step.

        All zero without a mask (every valid key is kept).
        """
        if self.mask_thresholds is None:
            return np.zeros(self._num_heads)
        thresholds = ops.convert_to_numpy(self._thresholds("float64"))
        return np.asarray(np.ravel(thresholds), "float64")

    def _expand_attention_mask(self, attention_mask, scores_rank):
        return expand_attention_mask(
            attention_mask, scores_rank, len(self._attention_axes)
        )

    def _threshold_softmax(self, scores, attention_mask=None):
        """`(probabilities, weights, keep)` of the layer's keep rule."""
        if attention_mask is not None:
            attention_mask = self._expand_attention_mask(
                attention_mask, len(scores.shape)
            )
        return threshold_softmax(
            scores, self._rule, self._thresholds, attention_mask
        )

    def _attention_scores(self, query, key):
        # Float16 logits overflow for large inputs; compute them in float32.
        query = at_least_float32(query)
        key = at_least_float32(key)
        query = ops.multiply(
            query, ops.cast(self._inverse_sqrt_key_dim, query.dtype)
        )
        return ops.einsum(self._dot_product_equation, key, query)

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        if key is None:
            key = value
        if (
            query_mask is None
            and value_mask is None
            and key_mask is None
            and attention_mask is None
            and not use_causal_mask
            and fused_path_applies(self, query, value, key)
        ):
            output, weights = self._fused_attention(query, value, key, training)
            if return_attention_scores:
                return output, weights
            return output
        return super().call(
            query,
            value,
            key=key,
            query_mask=query_mask,
            value_mask=value_mask,
            key_mask=key_mask,
            attention_mask=attention_mask,
            return_attention_scores=return_attention_scores,
            training=training,
            use_causal_mask=use_causal_mask,
        )

    def _as_tensors(self, query, value, key):
        """Convert as `__call__` does: a tensor stays the same object."""
        return tuple(
            ops.convert_to_tensor(x, dtype=self.compute_dtype)
            for x in (query, value, key)
        )

    def _fused_scores(self, query, value, key):
        """Scores and values of the fused path (`fused_projection`)."""
        denses = (self._query_dense, self._key_dense, self._value_dense)
        return fused_scores(
            query,
            value,
            key,
            denses,
            self._num_heads,
            self._key_dim,
            self._value_dim,
        )

    def _weights_and_dropout(self, scores, attention_mask, training, dtype):
        """Masked weights (cast to `dtype`) and their dropped-out copy.

        Shared by both attention paths: the threshold softmax, the warm-up
        step counter (advanced once per training call) and attention
        dropout.
        """
        if attention_mask is not None:
            attention_mask = self._expand_attention_mask(
                attention_mask, len(scores.shape)
            )
        # `_threshold_softmax`'s weights (no first softmax for logit rules).
        weights = masked_weights(
            scores, self._rule, self._thresholds, attention_mask
        )
        if training:
            threshold_warmup.advance(self.mask_step)
        weights = ops.cast(weights, dtype)
        if training and self._dropout > 0.0:
            dropped = stateless_dropout(
                weights, self._dropout, self._dropout_layer.seed_generator
            )
            return weights, dropped
        return weights, weights

    def _fused_attention(self, query, value, key, training):
        """`call` without attention masks: `(output, weights)`."""
        scores, v = self._fused_scores(query, value, key)
        weights, dropped = self._weights_and_dropout(
            scores, None, training, v.dtype
        )
        output = fused_output(dropped, v, self._output_dense, query.shape[1])
        return output, weights

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        if self.mask_thresholds is None:
            extra_kwargs = {"use_causal_mask": True} if use_causal_mask else {}
            return super()._compute_attention(
                query,
                key,
                value,
                attention_mask,
                training,
                return_attention_scores,
                **extra_kwargs,
            )
        if use_causal_mask:
            causal_mask = self._compute_causal_mask(query, value)
            attention_mask = (
                causal_mask
                if attention_mask is None
                else ops.logical_and(
                    ops.cast(attention_mask, "bool"), causal_mask
                )
            )
        scores = self._attention_scores(query, key)
        weights, dropped = self._weights_and_dropout(
            scores, attention_mask, training, value.dtype
        )
        output = ops.einsum(self._combine_equation, dropped, value)
        return output, weights

    def compute_attention_maps(
        self, query, value, key=None, attention_mask=None
    ):
        """`mask_diagnostics.attention_maps`: first-pass and masked maps."""
        return attention_maps(self, query, value, key, attention_mask)

    def mask_diagnostics(
        self, query, value=None, key=None, attention_mask=None
    ):
        """`mask_diagnostics.keep_statistics`: kept keys per head."""
        return keep_statistics(self, query, value, key, attention_mask)

    def head_gradient_norms(self, gradients):
        """`mask_diagnostics.head_gradient_norms`: per-head norms."""
        return head_gradient_norms(self, gradients)

    def get_config(self):
        config = super().get_config()
        config["mask_thresholds"] = (
            None if self.mask_thresholds is None else list(self.mask_thresholds)
        )
        config["mask_rule"] = self.mask_rule
        config["min_keys"] = self.min_keys
        config["mask_warmup_steps"] = self.mask_warmup_steps
        return config
