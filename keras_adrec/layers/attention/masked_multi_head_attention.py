"""Masked multi-head attention: Ad-Rec's per-head probability threshold."""

import keras
import numpy as np
from keras import ops

from keras_adrec.api_export import keras_adrec_export

# Fill for padded keys before the first softmax. The softmax runs in float32,
# where -1e9 is exact and far below any real score; float16 never sees it.
_PADDING_FILL = -1e9

MASK_RULES = ("paper", "straight_through", "relative")
DEFAULT_MASK_RULE = "paper"
DEFAULT_MIN_KEYS = 2


def _at_least_float32(x):
    """Cast half-precision tensors to float32; leave others unchanged."""
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        return ops.cast(x, "float32")
    return x


def _renormalise(scores, probabilities, keep, axes, floor=None):
    """Kept probabilities renormalised, `w = p keep / sum(p keep)`.

    `p = softmax(scores)` over `axes` and `keep` is a boolean constant, so
    `w` is the softmax of the scores over the kept keys and its gradient
    is the softmax backward pass, `dL/ds = w (g - sum(w g))`. On the
    TensorFlow backend that closed form is the gradient, applied directly
    to the scores: automatic differentiation would run the backward of the
    division and then of the first softmax, about six passes over the
    `(B, H, T, S)` tensor instead of three. Other backends differentiate
    the forward formula, which has the same gradient.

    Args:
        scores: the logits `p` was computed from.
        probabilities: `softmax(scores)` over `axes`.
        keep: boolean tensor of the same shape.
        axes: the key axes.
        floor: optional lower bound of `sum(p keep)` (rows that keep no key
            get weights 0 instead of 0 / 0).

    Returns:
        The weights, with the shape and dtype of `probabilities`.
    """

    def forward(probabilities):
        kept = ops.where(keep, probabilities, 0.0)
        total = ops.sum(kept, axis=axes, keepdims=True)
        if floor is not None:
            total = ops.maximum(total, floor)
        return kept / total

    if keras.backend.backend() != "tensorflow":
        return forward(probabilities)
    import tensorflow as tf

    @tf.custom_gradient
    def renormalise(scores):
        # `scores` only anchors the gradient; the forward pass reads the
        # probabilities already computed from them.
        weights = forward(probabilities)

        def grad(upstream):
            upstream = tf.cast(upstream, weights.dtype)
            inner = tf.reduce_sum(upstream * weights, axis=axes, keepdims=True)
            return tf.cast(weights * (upstream - inner), scores.dtype)

        return weights, grad

    return renormalise(scores)


# Constants of the dropout mask's counter hash (see `stateless_dropout`):
# the golden-ratio increment and the two multipliers of Wellons' `lowbias32`
# integer hash (hash-prospector), a murmur3-style finaliser with lower bias.
_HASH_INCREMENT = 0x9E3779B9
_HASH_MULTIPLIERS = (0x7FEB352D, 0x846CA68B)


def _uniform_bits_tf(shape, seed):
    """uint32 bits for every entry of `shape` from a counter hash.

    `bits[i] = lowbias32((i * 0x9E3779B9 + seed[0]) ^ seed[1])` over the
    flat index `i`: integer multiplies, shifts and xors that XLA fuses into
    one loop. Plain TensorFlow runs them as separate ops, about as fast as
    its Philox kernel.
    """
    import tensorflow as tf

    def shift_xor(x, bits):
        return tf.bitwise.bitwise_xor(
            x, tf.bitwise.right_shift(x, tf.constant(bits, tf.uint32))
        )

    key = tf.bitcast(tf.cast(seed, tf.int32), tf.uint32)
    index = tf.bitcast(
        tf.range(tf.reduce_prod(shape), dtype=tf.int32), tf.uint32
    )
    x = index * tf.constant(_HASH_INCREMENT, tf.uint32) + key[0]
    x = tf.bitwise.bitwise_xor(x, key[1])
    x = shift_xor(x, 16) * tf.constant(_HASH_MULTIPLIERS[0], tf.uint32)
    x = shift_xor(x, 15) * tf.constant(_HASH_MULTIPLIERS[1], tf.uint32)
    return tf.reshape(shift_xor(x, 16), shape)


def _in_xla_context():
    """Whether TensorFlow is tracing a function that XLA will compile."""
    try:
        from tensorflow.python.framework import ops as tf_ops
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - a TensorFlow without them
        return False
    graph = tf_ops.get_default_graph()
    return bool(control_flow_util.GraphOrParentsInXlaContext(graph))


def dropout_keep_mask_tf(shape, rate, seed, use_hash=None):
    """Boolean keep mask of inverted dropout, on the TensorFlow backend.

    Each entry is kept with probability `1 - rate`. Inside a function that
    XLA compiles (`use_hash=None` detects it) the decisions come from a
    counter hash (`_uniform_bits_tf`), elsewhere from Philox
    (`tf.random.stateless_uniform(alg="philox")`): each generator is the
    fast one in its mode, so the same seed gives different masks with and
    without XLA.

    Args:
        shape: the mask's shape (a shape tensor or list).
        rate: float in (0, 1). Drop probability.
        seed: int32 tensor of shape (2,).
        use_hash: bool or None. Force a generator; None picks by mode.

    Returns:
        A boolean tensor of `shape`.
    """
    import tensorflow as tf

    if use_hash is None:
        use_hash = _in_xla_context()
    if use_hash:
        bits = _uniform_bits_tf(shape, seed)
        # Drop when bits < rate * 2**32: probability rate, within 2**-32.
        threshold = min(int(round(rate * 2.0**32)), 2**32 - 1)
        return bits >= tf.constant(threshold, tf.uint32)
    seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    noise = tf.random.stateless_uniform(
        shape, seed=seed, dtype=tf.float32, alg="philox"
    )
    return noise >= rate


def stateless_dropout(inputs, rate, seed_generator):
    """Inverted dropout that stays fast with and without XLA on CPU.

    Same semantics as `keras.random.dropout`: each entry is zeroed with
    probability `rate` and the kept ones are scaled by `1 / (1 - rate)`.
    On the TensorFlow backend the mask comes from `dropout_keep_mask_tf`,
    seeded by `seed_generator`: Philox in a `tf.function` graph, and under
    XLA a counter-based integer hash of each entry's index. TensorFlow's
    generators are slow under XLA on CPU: `keras.random.dropout` leaves the
    algorithm to `auto_select`, which XLA lowers to ThreeFry (in some graphs
    `model.fit(jit_compile=True)` then spent 30 ms per step on a
    [128, 27, 16] tensor and 240-600 ms on [128, 27, 128]); Philox costs
    6.5 ms forward + backward on [1024, 27, 16] with XLA, the hash 1.0 ms.
    Without XLA the hash's separate integer ops cost more than the Philox
    kernel (7.0 against 5.9 ms; a 2-core machine, issue 15). A dropout mask
    needs independent, unbiased keep decisions, not a cryptographic
    generator; tests check both generators' rate, the dependence on the
    seed and the correlation of neighbouring entries.
    Other backends use `keras.random.dropout`.

    Args:
        inputs: tensor to drop entries of.
        rate: float in [0, 1). Fraction of entries to drop.
        seed_generator: `keras.random.SeedGenerator`, advanced once per call.

    Returns:
        A tensor with the shape and dtype of `inputs`.
    """
    if rate <= 0.0:
        return inputs
    if keras.backend.backend() != "tensorflow":
        return keras.random.dropout(inputs, rate, seed=seed_generator)
    import tensorflow as tf

    keep = dropout_keep_mask_tf(tf.shape(inputs), rate, seed_generator.next())
    # One select of two scalars and one multiply: the backward pass is a
    # single multiply by the same mask.
    mask = tf.where(keep, 1.0 / (1.0 - rate), 0.0)
    return inputs * tf.cast(mask, inputs.dtype)


@keras_adrec_export
class MaskedMultiHeadAttention(keras.layers.MultiHeadAttention):
    """Multi-head attention that keeps, per head, only probable keys.

    Ad-Rec's masked multi-head self-attention (paper eq. 1-4). For each head
    `h`, sample and query, the first-pass probabilities
    `p = softmax(q k^T / sqrt(key_dim))` decide which keys survive, and the
    attention weights are the kept probabilities renormalised,
    `a_j = p_j keep_j / sum_k p_k keep_k` (a softmax over the kept logits).
    `mask_rule` sets the keep decision:

    - `"relative"`: `keep_j = p_j >= theta_h * max_k p_k`, or
      `p_j` among the `min_keys` largest (a logit margin of
      `ln(1 / theta_h)` below the best key). Dense while the scores are
      flat (at initialisation), sparse as the head sharpens; no row is ever
      reduced to one key when `min_keys >= 2`.
    - `"paper"` (the default): `keep_j = p_j > theta_h or p_j = max_k p_k`
      (the paper's absolute threshold, the most probable key always kept). With
      `theta_h` well above `1 / S` for `S` keys most rows keep one key:
      their weight is exactly 1 and they send no gradient to the head's
      query and key kernels (hard argmax attention over the initial
      scores).
    - `"straight_through"`: the `"paper"` forward pass; the backward pass of
      the dense softmax, `a = p + stop_gradient(a_paper - p)`.

    `mask_warmup_steps > 0` ramps every threshold as
    `theta_h(t) = theta_h * min(1, t / mask_warmup_steps)`, where `t` counts
    this layer's training calls (a non-trainable `mask_step` weight, saved
    with the model). The keep decision carries no gradient; gradients flow
    through the renormalisation (and, for `"straight_through"`, through the
    dense softmax). Both softmaxes come from one score tensor and run in
    float32, also under `mixed_float16`.

    The layer's default is the paper's rule. The ranking presets (RM1-RM3)
    use `"relative"`, the winner of the second pre-registered selection of
    `benchmarks/mask_rules.md` (results in
    `benchmarks/results/mask_rules_v2.md`): at RM1's 27 tokens the paper
    rule with theta 0.1 leaves head 0 a hard pick of one key on over half
    the rows, while the relative rule keeps every head learning and matches
    no mask in quality, keeping about 19 of 27 keys in its sparsest head.
    `mask_diagnostics` reports, per head, the kept keys and single-key rows.

    The layer is a `keras.layers.MultiHeadAttention` with the same call
    signature and the same weights (`get_weights()` / `set_weights()` are
    interchangeable with a Keras layer of the same shape). The mask applies
    in training and at inference alike. With `mask_thresholds=None` every
    computation is delegated to the Keras layer, so the outputs are equal.

    Args:
        num_heads: int. Number of attention heads `H`.
        key_dim: int. Size of each head for query and key.
        mask_thresholds: `"geometric"`, a list of `num_heads` floats in
            [0, 1), or `None`. `"geometric"` gives
            `[1e-1, 1e-2, ..., 1e-H]`, the paper's default; `None` turns the
            mask off. Defaults to `"geometric"`.
        dropout: float in [0, 1). Dropout on the attention weights, as in
            `keras.layers.MultiHeadAttention`. Defaults to `0.0`.
        mask_rule: `"paper"`, `"relative"` or `"straight_through"`; see
            above. Defaults to `"paper"`.
        min_keys: int >= 1. Keys the `"relative"` rule always keeps (the
            most probable ones). Defaults to `2`.
        mask_warmup_steps: int >= 0. Training calls over which thresholds
            ramp up linearly from 0; `0` turns the warm-up off.
            Defaults to `0`.
        **kwargs: any other `keras.layers.MultiHeadAttention` argument
            (`value_dim`, `use_bias`, `output_shape`, `attention_axes`,
            initializers, regularizers, `seed`, ...) and the base layer
            arguments.

    Call arguments:
        query: tensor of shape `(B, T, dim)`.
        value: tensor of shape `(B, S, dim)`.
        key: optional tensor of shape `(B, S, dim)`; `value` if omitted.
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
        mask_thresholds="geometric",
        dropout=0.0,
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
        thresholds = self.resolve_mask_thresholds(mask_thresholds, num_heads)
        self.validate_mask_rule(mask_rule, min_keys, mask_warmup_steps)
        if thresholds is not None and kwargs.get("flash_attention"):
            raise ValueError(
                "`flash_attention=True` cannot apply the threshold mask. "
                "Pass `mask_thresholds=None` or `flash_attention=False`. "
                f"Received: mask_thresholds={mask_thresholds}"
            )
        super().__init__(
            num_heads=num_heads, key_dim=key_dim, dropout=dropout, **kwargs
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
        if mask_rule not in MASK_RULES:
            raise ValueError(
                f"`mask_rule` must be one of {', '.join(MASK_RULES)}. "
                f"Received: mask_rule={mask_rule!r}"
            )
        if (
            isinstance(min_keys, bool)
            or not isinstance(min_keys, (int, np.integer))
            or min_keys < 1
        ):
            raise ValueError(
                "`min_keys` must be a positive integer. "
                f"Received: min_keys={min_keys!r}"
            )
        if (
            isinstance(mask_warmup_steps, bool)
            or not isinstance(mask_warmup_steps, (int, np.integer))
            or mask_warmup_steps < 0
        ):
            raise ValueError(
                "`mask_warmup_steps` must be a non-negative integer. "
                f"Received: mask_warmup_steps={mask_warmup_steps!r}"
            )

    @staticmethod
    def resolve_mask_thresholds(mask_thresholds, num_heads):
        """Turn a `mask_thresholds` argument into a list of floats or `None`.

        Args:
            mask_thresholds: `"geometric"`, a sequence of `num_heads` floats
                in [0, 1), or `None`.
            num_heads: int. Number of heads.

        Returns:
            A list of `num_heads` Python floats, or `None`.

        Raises:
            ValueError: for any other value.
        """
        if mask_thresholds is None:
            return None
        if isinstance(mask_thresholds, str):
            if mask_thresholds == "geometric":
                return [10.0 ** -(head + 1) for head in range(num_heads)]
            raise ValueError(
                "`mask_thresholds` must be 'geometric', a list of "
                f"{num_heads} floats in [0, 1) or None. "
                f"Received: mask_thresholds={mask_thresholds!r}"
            )
        try:
            values = [float(v) for v in np.asarray(mask_thresholds).ravel()]
            if np.ndim(mask_thresholds) != 1:
                raise TypeError
        except (TypeError, ValueError):
            raise ValueError(
                "`mask_thresholds` must be 'geometric', a list of "
                f"{num_heads} floats in [0, 1) or None. "
                f"Received: mask_thresholds={mask_thresholds!r}"
            ) from None
        if len(values) != num_heads:
            raise ValueError(
                "`mask_thresholds` needs one threshold per head: "
                f"{len(values)} given for num_heads={num_heads}. "
                f"Received: mask_thresholds={mask_thresholds!r}"
            )
        for value in values:
            if not 0.0 <= value < 1.0:
                raise ValueError(
                    "Each of `mask_thresholds` must be in [0, 1). "
                    f"Received: mask_thresholds={mask_thresholds!r}"
                )
        return values

    def _build_attention(self, rank):
        super()._build_attention(rank)
        # Scores have shape (B, <batch dims>, H, <query axes>, <key axes>).
        num_axes = len(self._attention_axes)
        scores_rank = rank + num_axes - 1
        self._key_axes = tuple(range(scores_rank - num_axes, scores_rank))
        if self.mask_thresholds is not None:
            self._threshold_values = np.reshape(
                np.asarray(self.mask_thresholds, dtype="float64"),
                (self._num_heads,) + (1,) * (2 * num_axes),
            )
        if self.mask_thresholds is not None and self.mask_warmup_steps > 0:
            # Training steps seen, for the threshold warm-up. A float32
            # counter is exact up to 2**24 steps; past the warm-up only
            # `min(1, t / warmup)` = 1 matters.
            self.mask_step = self.add_weight(
                shape=(),
                initializer="zeros",
                trainable=False,
                dtype="float32",
                name="mask_step",
            )

    def _softmax_axis(self):
        axes = self._key_axes
        return axes[0] if len(axes) == 1 else axes

    def _expand_attention_mask(self, attention_mask, scores_rank):
        # (B, T, S) -> (B, 1, T, S): broadcast over heads, as Keras does.
        mask_expansion_axis = -len(self._attention_axes) * 2 - 1
        for _ in range(scores_rank - len(attention_mask.shape)):
            attention_mask = ops.expand_dims(
                attention_mask, axis=mask_expansion_axis
            )
        return ops.cast(attention_mask, "bool")

    def _thresholds(self, dtype):
        """Per-head thresholds at the current step, broadcastable to p."""
        theta = self._threshold_values.astype(dtype)
        if self.mask_step is None:
            return theta
        ramp = ops.minimum(
            ops.cast(self.mask_step, dtype) / float(self.mask_warmup_steps),
            1.0,
        )
        return ops.convert_to_tensor(theta) * ramp

    def _kth_largest(self, probabilities, k, row_max=None):
        """The k-th largest probability of each row, keepdims over keys.

        Counted with repeats, as in a descending sort: a row whose two
        largest entries tie has the maximum as its second largest. For
        `k <= 4` this takes `k` max-reductions instead of `top_k`, which
        sorts (slow on CPU, and XLA on CPU lowers it to a full sort of
        every row: the relative rule ran 1.7x slower with XLA at RM1).
        """
        sizes = [probabilities.shape[axis] for axis in self._key_axes]
        if None not in sizes:
            k = min(k, int(np.prod(sizes)))
        if k > 4:
            return self._top_k_kth(probabilities, k)
        axes = self._key_axes
        if row_max is None:
            row_max = ops.max(probabilities, axis=axes, keepdims=True)
        kth, seen, remaining, largest = row_max, None, probabilities, row_max
        for rank in range(1, k):
            # `largest` is the rank-th distinct value; `seen` counts the
            # entries at or above it.
            at_largest = ops.greater_equal(remaining, largest)
            count = ops.sum(
                ops.cast(at_largest, "int32"), axis=axes, keepdims=True
            )
            seen = count if seen is None else seen + count
            # Probabilities are >= 0, so -1 removes an entry.
            remaining = ops.where(at_largest, -1.0, remaining)
            largest = ops.max(remaining, axis=axes, keepdims=True)
            kth = ops.where(ops.greater_equal(seen, k), kth, largest)
        return kth

    def _top_k_kth(self, probabilities, k):
        """The k-th largest probability of each row, by `top_k`."""
        num_axes = len(self._key_axes)
        if num_axes == 1:
            flat = probabilities
        else:
            shape = ops.shape(probabilities)
            flat = ops.reshape(probabilities, tuple(shape[:-num_axes]) + (-1,))
        values, _ = ops.top_k(flat, k, sorted=True)
        kth = values[..., k - 1 :]
        for _ in range(num_axes - 1):
            kth = ops.expand_dims(kth, -1)
        return kth

    def _keep_mask(self, probabilities):
        """Boolean keep decision of the rule (no gradient flows through)."""
        dtype = keras.backend.standardize_dtype(probabilities.dtype)
        row_max = ops.max(probabilities, axis=self._key_axes, keepdims=True)
        theta = self._thresholds(dtype)
        if self.mask_rule == "relative":
            # keep = p >= theta * max p, or among the `min_keys` largest.
            cutoff = ops.minimum(
                theta * row_max,
                self._kth_largest(probabilities, self.min_keys, row_max),
            )
            return ops.greater_equal(probabilities, cutoff)
        if self.mask_step is None:
            # keep = (p > theta) | (p == max p), as one comparison:
            # p >= min(next float above theta, max p).
            above_theta = np.nextafter(theta, np.asarray(np.inf, dtype))
            cutoff = ops.minimum(ops.convert_to_tensor(above_theta), row_max)
            return ops.greater_equal(probabilities, cutoff)
        return ops.logical_or(
            ops.greater(probabilities, theta),
            ops.greater_equal(probabilities, row_max),
        )

    def _threshold_softmax(self, scores, attention_mask=None):
        """First softmax, keep mask and renormalised weights, in float32.

        Returns `(probabilities, weights, keep)`: float32 (float64 when the
        scores are float64) probabilities and weights, and the boolean keep
        mask, each of the scores' shape.
        """
        axis = self._softmax_axis()
        scores = _at_least_float32(scores)
        if attention_mask is not None:
            attention_mask = self._expand_attention_mask(
                attention_mask, len(scores.shape)
            )
            scores = ops.where(attention_mask, scores, _PADDING_FILL)
        probabilities = ops.softmax(scores, axis=axis)
        # Comparisons carry no gradient: the keep decision is a constant for
        # backpropagation, and gradients flow through `kept / total` only.
        keep = self._keep_mask(probabilities)
        if attention_mask is not None:
            keep = ops.logical_and(keep, attention_mask)
        # A row whose keys are all padding keeps nothing: weights 0.
        floor = None if attention_mask is None else 1e-30
        weights = _renormalise(
            scores, probabilities, keep, self._key_axes, floor
        )
        if self.mask_rule == "straight_through":
            # Forward: the paper's weights. Backward: the dense softmax's.
            dense = probabilities
            if attention_mask is not None:
                dense = ops.where(attention_mask, probabilities, 0.0)
            weights = dense + ops.stop_gradient(weights - dense)
        return probabilities, weights, keep

    def _attention_scores(self, query, key):
        # Float16 logits overflow for large inputs; compute them in float32.
        query = _at_least_float32(query)
        key = _at_least_float32(key)
        query = ops.multiply(
            query, ops.cast(self._inverse_sqrt_key_dim, query.dtype)
        )
        return ops.einsum(self._dot_product_equation, key, query)

    def _fast_path_supported(self, query, value, key):
        """Whether `call` can take the fused path (see `_fused_attention`).

        The common Ad-Rec case: a threshold mask, rank-3 inputs attending
        over axis 1, no attention mask of any kind, and the default
        projections (no gate, sliding window, custom output shape,
        quantization or LoRA).
        """
        if self.mask_thresholds is None or len(query.shape) != 3:
            return False
        if tuple(self._attention_axes) != (1,):
            return False
        if self._output_shape or getattr(self, "_use_gate", False):
            return False
        if getattr(self, "_sliding_window", None) is not None:
            return False
        for tensor in (query, value, key):
            if getattr(tensor, "_keras_mask", None) is not None:
                return False
        for dense in (
            self._query_dense,
            self._key_dense,
            self._value_dense,
            self._output_dense,
        ):
            if getattr(dense, "quantization_mode", None) or getattr(
                dense, "lora_enabled", False
            ):
                return False
        return True

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
            and self._fast_path_supported(query, value, key)
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

    def _projection(self, dense):
        """`dense`'s kernel as a 2D `(in, out)` matrix and its flat bias."""
        kernel = ops.reshape(dense.kernel, (dense.kernel.shape[0], -1))
        bias = None if dense.bias is None else ops.reshape(dense.bias, (-1,))
        return kernel, bias

    def _heads(self, tokens, num_tokens, head_size):
        """`(B * T, H * d)` -> `(B, H, T, d)`."""
        tokens = ops.reshape(
            tokens, (-1, num_tokens, self._num_heads, head_size)
        )
        return ops.transpose(tokens, (0, 2, 1, 3))

    def _as_tensors(self, query, value, key):
        """Convert as `__call__` does: a tensor stays the same object."""
        return tuple(
            ops.convert_to_tensor(x, dtype=self.compute_dtype)
            for x in (query, value, key)
        )

    def _fused_scores(self, query, value, key):
        """Scaled scores `(B, H, T, S)` (float32 or wider) and values
        `(B, H, S, d_v)`, with few, large ops.

        For self-attention (`query`, `key` and `value` the same tensor) one
        matmul of the `(B * T, dim)` tokens with the concatenated query,
        key and value kernels projects all three; otherwise one 2D matmul
        each. Heads are laid out `(B, H, T, d)` once, so that the score
        product is a batched matmul with leading batch axes (no transpose
        inside `einsum`).
        """
        num_heads, key_dim = self._num_heads, self._key_dim
        value_dim = self._value_dim
        num_queries = query.shape[1]
        num_keys = value.shape[1]
        if num_queries is None:
            num_queries = ops.shape(query)[1]
        if num_keys is None:
            num_keys = ops.shape(value)[1]
        wq, bq = self._projection(self._query_dense)
        wk, bk = self._projection(self._key_dense)
        wv, bv = self._projection(self._value_dense)
        # A scope of its own, for profiles (benchmarks.step_profile).
        with keras.name_scope("qkv_projection"):
            if query is value and key is value:
                projected = ops.matmul(
                    ops.reshape(query, (-1, query.shape[-1])),
                    ops.concatenate([wq, wk, wv], axis=1),
                )
                if bq is not None:
                    projected = projected + ops.concatenate(
                        [bq, bk, bv], axis=0
                    )
                if key_dim == value_dim:
                    # (B * S, 3 * H * d) -> (3, B, H, S, d): one transpose.
                    projected = ops.reshape(
                        projected, (-1, num_queries, 3, num_heads, key_dim)
                    )
                    projected = ops.transpose(projected, (2, 0, 3, 1, 4))
                    # unstack: its gradient is one stack (slicing would add
                    # three zero-padded full-size gradients).
                    q, k, v = ops.unstack(projected, 3, axis=0)
                else:
                    width = num_heads * key_dim
                    q, k, v = ops.split(projected, [width, 2 * width], axis=1)
                    q = self._heads(q, num_queries, key_dim)
                    k = self._heads(k, num_keys, key_dim)
                    v = self._heads(v, num_keys, value_dim)
            else:

                def project(tokens, kernel, bias, num_tokens, head_size):
                    tokens = ops.matmul(
                        ops.reshape(tokens, (-1, tokens.shape[-1])), kernel
                    )
                    if bias is not None:
                        tokens = tokens + bias
                    return self._heads(tokens, num_tokens, head_size)

                q = project(query, wq, bq, num_queries, key_dim)
                k = project(key, wk, bk, num_keys, key_dim)
                v = project(value, wv, bv, num_keys, value_dim)
        # Float16 logits overflow for large inputs; compute them in float32.
        q = _at_least_float32(q)
        q = ops.multiply(q, ops.cast(self._inverse_sqrt_key_dim, q.dtype))
        scores = ops.einsum("bhtd,bhsd->bhts", q, _at_least_float32(k))
        return scores, v

    def _weights_and_dropout(self, scores, attention_mask, training, dtype):
        """Masked weights (cast to `dtype`) and their dropped-out copy.

        Shared by both attention paths: the threshold softmax, the warm-up
        step counter (advanced once per training call) and attention
        dropout.
        """
        _, weights, _ = self._threshold_softmax(scores, attention_mask)
        if training and self.mask_step is not None:
            # The step that used threshold theta * min(1, t / warmup) is t.
            self.mask_step.assign_add(1.0)
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
        heads = ops.einsum("bhts,bhsd->bhtd", dropped, v)
        num_heads, num_queries = self._num_heads, ops.shape(heads)[2]
        heads = ops.reshape(
            ops.transpose(heads, (0, 2, 1, 3)),
            (-1, num_heads * self._value_dim),
        )
        with keras.name_scope("output_projection"):
            dense = self._output_dense
            output = ops.matmul(
                heads,
                ops.reshape(dense.kernel, (num_heads * self._value_dim, -1)),
            )
            if dense.bias is not None:
                output = output + dense.bias
        num_queries = query.shape[1] or num_queries
        return ops.reshape(output, (-1, num_queries, output.shape[-1])), weights

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
        """First-pass and masked attention probabilities, for figures.

        Args:
            query: tensor of shape `(B, T, dim)`.
            value: tensor of shape `(B, S, dim)`.
            key: optional tensor of shape `(B, S, dim)`; `value` if omitted.
            attention_mask: optional boolean tensor of shape `(B, T, S)`.

        Returns:
            A dict with `"unmasked"` (the softmax of the scores) and
            `"masked"` (the weights the layer uses), each float32 of shape
            `(B, H, T, S)`. Without thresholds both are the softmax.
        """
        if key is None:
            key = value
        if not self.built:
            self.build(query.shape, value.shape, key.shape)
        if attention_mask is None and self._fast_path_supported(
            query, value, key
        ):
            # Exactly the computation of `call`.
            scores, _ = self._fused_scores(*self._as_tensors(query, value, key))
            probabilities, weights, _ = self._threshold_softmax(scores)
            return {"unmasked": probabilities, "masked": weights}
        query = self._query_dense(query)
        key = self._key_dense(key)
        scores = self._attention_scores(query, key)
        if self.mask_thresholds is None:
            scores = _at_least_float32(scores)
            if attention_mask is not None:
                attention_mask = self._expand_attention_mask(
                    attention_mask, len(scores.shape)
                )
                scores = ops.where(attention_mask, scores, _PADDING_FILL)
            probabilities = ops.softmax(scores, axis=self._softmax_axis())
            return {"unmasked": probabilities, "masked": probabilities}
        probabilities, weights, _ = self._threshold_softmax(
            scores, attention_mask
        )
        return {"unmasked": probabilities, "masked": weights}

    def mask_diagnostics(
        self, query, value=None, key=None, attention_mask=None
    ):
        """Per-head statistics of the keep mask, to see whether heads learn.

        A head whose query rows keep a single key is hard attention: its
        weight is exactly 1 and, under the `"paper"` rule, such a row sends
        no gradient to the head's query and key kernels. Pair with
        `head_gradient_norms` for the gradients.

        Args:
            query: tensor of shape `(B, T, dim)`.
            value: tensor of shape `(B, S, dim)`; `query` if omitted.
            key: optional tensor of shape `(B, S, dim)`; `value` if omitted.
            attention_mask: optional boolean tensor of shape `(B, T, S)`.

        Returns:
            A dict of float64 numpy arrays of shape `(num_heads,)`:
            `"mean_kept_keys"` (kept keys per query row, averaged over rows
            and samples), `"single_key_fraction"` (fraction of query rows
            that keep exactly one key) and `"thresholds"` (the thresholds
            in use at the current step; all zero without a mask, where every
            valid key is kept).
        """
        value = query if value is None else value
        key = value if key is None else key
        query = ops.convert_to_tensor(query, dtype=self.compute_dtype)
        value = ops.convert_to_tensor(value, dtype=self.compute_dtype)
        key = ops.convert_to_tensor(key, dtype=self.compute_dtype)
        if not self.built:
            self.build(query.shape, value.shape, key.shape)
        fused = attention_mask is None and self._fast_path_supported(
            query, value, key
        )
        if fused:
            scores, _ = self._fused_scores(query, value, key)
        else:
            scores = self._attention_scores(
                self._query_dense(query), self._key_dense(key)
            )
        if self.mask_thresholds is None:
            keep = ops.ones_like(scores, dtype="bool")
            if attention_mask is not None:
                keep = ops.logical_and(
                    keep,
                    self._expand_attention_mask(
                        attention_mask, len(scores.shape)
                    ),
                )
            thresholds = np.zeros(self._num_heads)
        else:
            _, _, keep = self._threshold_softmax(scores, attention_mask)
            thresholds = np.ravel(
                ops.convert_to_numpy(self._thresholds("float64"))
            )
        counts = ops.convert_to_numpy(
            ops.sum(ops.cast(keep, "int32"), axis=self._key_axes)
        )
        # counts: (B, <batch dims>, H, <query axes>) -> (H, rows).
        head_axis = counts.ndim - len(self._attention_axes) - 1
        counts = np.moveaxis(counts, head_axis, 0).reshape(self._num_heads, -1)
        return {
            "mean_kept_keys": counts.mean(axis=1).astype("float64"),
            "single_key_fraction": (counts == 1).mean(axis=1).astype("float64"),
            "thresholds": np.asarray(thresholds, "float64"),
        }

    def head_gradient_norms(self, gradients):
        """Per-head L2 norms of query and key kernel gradients.

        Args:
            gradients: a dict mapping this layer's variables (or their
                `path`s) to gradients, e.g.
                `dict(zip([v.path for v in vars], tape.gradient(loss, vars)))`;
                must hold the query and key kernels.

        Returns:
            A dict with `"query_kernel"` and `"key_kernel"`, float64 numpy
            arrays of shape `(num_heads,)`: the norm of the gradient's slice
            `[:, h, :]` (the kernels have shape `(dim, num_heads, key_dim)`).
            A missing gradient (`None`) counts as zero.
        """
        by_path = {
            getattr(variable, "path", variable): grad
            for variable, grad in gradients.items()
        }
        result = {}
        for name, dense in (
            ("query_kernel", self._query_dense),
            ("key_kernel", self._key_dense),
        ):
            kernel = dense.kernel
            grad = by_path.get(kernel.path)
            if grad is None:
                result[name] = np.zeros(self._num_heads)
                continue
            grad = np.asarray(ops.convert_to_numpy(grad), "float64")
            head_axis = grad.ndim - 2
            grad = np.moveaxis(grad, head_axis, 0).reshape(self._num_heads, -1)
            result[name] = np.sqrt((grad**2).sum(axis=1))
        return result

    def get_config(self):
        config = super().get_config()
        config["mask_thresholds"] = (
            None if self.mask_thresholds is None else list(self.mask_thresholds)
        )
        config["mask_rule"] = self.mask_rule
        config["min_keys"] = self.min_keys
        config["mask_warmup_steps"] = self.mask_warmup_steps
        return config
