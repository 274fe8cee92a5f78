"""The threshold softmax: first-pass probabilities, keep mask, weights.

`threshold_softmax(scores, rule, thresholds, key_axes)` computes, in
float32, `p = softmax(scores)` over the key axes, asks the keep rule
which keys survive and renormalises the kept probabilities,
`w = p keep / sum(p keep)` (a softmax over the kept logits).

`masked_weights` computes only `w`, what the layer's `call` needs. For a
rule that decides from the logits (`MaskRule.logit_keep`, the relative
rule) it skips the first softmax: the keep mask comes from the logits and
`w` is one softmax over the kept ones.
"""

import keras
import numpy as np
from keras import ops

# Fill for padded keys before the first softmax. The softmax runs in float32,
# where -1e9 is exact and far below any real score; float16 never sees it.
PADDING_FILL = -1e9


def at_least_float32(x):
    """Cast half-precision tensors to float32; leave others unchanged."""
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        return ops.cast(x, "float32")
    return x


def softmax_over(scores, key_axes):
    """Softmax over the trailing `key_axes` of `scores`, at any rank.

    One key axis of a tensor of rank <= 5 is one softmax kernel. Otherwise
    the key axes are flattened into one and the leading axes into another
    (TensorFlow's softmax kernel takes at most 5 dimensions; inputs of
    rank 5 give scores of rank 6 or 7).
    """
    rank = len(scores.shape)
    if len(key_axes) == 1 and rank <= 5:
        return ops.softmax(scores, axis=key_axes[0])
    sizes = [scores.shape[axis] for axis in key_axes]
    row = int(np.prod(sizes)) if None not in sizes else -1
    flat = ops.reshape(scores, (-1, row))
    return ops.reshape(ops.softmax(flat, axis=-1), ops.shape(scores))


def expand_attention_mask(attention_mask, scores_rank, num_attention_axes):
    """`(B, T, S)` -> broadcastable to the scores, as Keras does."""
    mask_expansion_axis = -num_attention_axes * 2 - 1
    for _ in range(scores_rank - len(attention_mask.shape)):
        attention_mask = ops.expand_dims(attention_mask, mask_expansion_axis)
    return ops.cast(attention_mask, "bool")


def renormalise(scores, probabilities, keep, axes, floor=None):
    """Kept probabilities renormalised, `w = p keep / sum(p keep)`.

    `p = softmax(scores)` over `axes` and `keep` is a boolean constant, so
    `w` is the softmax of the scores over the kept keys and its gradient
    is the softmax backward pass, `dL/ds = w (g - sum(w g))`: exactly zero
    for a row that keeps one key (`w` one-hot). On the TensorFlow backend
    that closed form is the gradient of `p keep / sum(p keep)`, applied
    directly to the scores: automatic differentiation would run the
    backward of the division and then of the first softmax, about six
    passes over the `(B, H, T, S)` tensor instead of three. Other backends
    take the softmax of the kept scores, whose gradient is the same closed
    form (their autodiff of the division would leave rounding residues).

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
    if keras.backend.backend() != "tensorflow":
        scores = ops.cast(scores, probabilities.dtype)
        weights = softmax_over(ops.where(keep, scores, PADDING_FILL), axes)
        if floor is None:
            return weights
        kept_any = ops.any(keep, axis=axes, keepdims=True)
        return ops.where(kept_any, weights, 0.0)

    def forward(probabilities):
        kept = ops.where(keep, probabilities, 0.0)
        total = ops.sum(kept, axis=axes, keepdims=True)
        if floor is not None:
            total = ops.maximum(total, floor)
        return kept / total

    import tensorflow as tf

    @tf.custom_gradient
    def renormalised(scores):
        # `scores` only anchors the gradient; the forward pass reads the
        # probabilities already computed from them.
        weights = forward(probabilities)

        def grad(upstream):
            upstream = tf.cast(upstream, weights.dtype)
            inner = tf.reduce_sum(upstream * weights, axis=axes, keepdims=True)
            return tf.cast(weights * (upstream - inner), scores.dtype)

        return weights, grad

    return renormalised(scores)


def log_thresholds(thresholds):
    """`log(theta)` of a numpy array or a tensor; `-inf` for a zero."""
    if isinstance(thresholds, np.ndarray):
        with np.errstate(divide="ignore"):
            return np.log(thresholds)
    return ops.log(thresholds)


def _logit_keep(rule, scores, thresholds, attention_mask):
    """The rule's keep mask from the logits, or `None` (see `logit_keep`)."""
    dtype = keras.backend.standardize_dtype(scores.dtype)
    row_max = ops.max(scores, axis=rule.key_axes, keepdims=True)
    keep = rule.logit_keep(scores, log_thresholds(thresholds(dtype)), row_max)
    if keep is not None and attention_mask is not None:
        keep = ops.logical_and(keep, attention_mask)
    return keep


def kept_softmax(scores, keep, axes, any_kept=False):
    """Softmax over the kept logits: `w = p keep / sum(p keep)`.

    One softmax pass instead of a first softmax and a renormalisation.
    On the TensorFlow backend its gradient is the closed form
    `dL/ds = w (g - sum(w g))` applied directly to the scores (zero on
    dropped keys, since `w` is), which saves the backward pass of the
    selection.

    Args:
        scores: float32 (or wider) logits.
        keep: boolean tensor of the same shape.
        axes: the key axes.
        any_kept: bool. Whether a row may keep no key (padding); such rows
            get weights 0.

    Returns:
        The weights, with the shape and dtype of `scores`.
    """

    def forward(scores):
        weights = softmax_over(ops.where(keep, scores, PADDING_FILL), axes)
        if any_kept:
            kept_any = ops.any(keep, axis=axes, keepdims=True)
            weights = ops.where(kept_any, weights, 0.0)
        return weights

    if keras.backend.backend() != "tensorflow":
        return forward(scores)
    import tensorflow as tf

    @tf.custom_gradient
    def kept(scores):
        weights = forward(scores)

        def grad(upstream):
            upstream = tf.cast(upstream, weights.dtype)
            inner = tf.reduce_sum(upstream * weights, axis=axes, keepdims=True)
            return tf.cast(weights * (upstream - inner), scores.dtype)

        return weights, grad

    return kept(scores)


def masked_weights(scores, rule, thresholds, attention_mask=None):
    """The attention weights of `threshold_softmax`, computed directly.

    For a rule with a logit form (`MaskRule.logit_keep`) the first
    softmax is skipped; otherwise this is `threshold_softmax(...)[1]`.
    Arguments as in `threshold_softmax`.
    """
    scores = at_least_float32(scores)
    if attention_mask is not None:
        scores = ops.where(attention_mask, scores, PADDING_FILL)
    keep = _logit_keep(rule, scores, thresholds, attention_mask)
    if keep is None:
        return threshold_softmax(scores, rule, thresholds, attention_mask)[1]
    return kept_softmax(
        scores, keep, rule.key_axes, any_kept=attention_mask is not None
    )


def threshold_softmax(scores, rule, thresholds, attention_mask=None):
    """First softmax, keep mask and weights of one keep rule, in float32.

    Args:
        scores: scaled attention logits, `(..., H, <queries>, <keys>)`.
        rule: a `keras_adrec.layers.attention.mask_rules.MaskRule`; its
            `key_axes` are the softmax axes.
        thresholds: callable taking a dtype and returning the per-head
            thresholds broadcastable to the scores (a numpy array, or a
            tensor during warm-up).
        attention_mask: optional boolean mask broadcastable to the scores.
            `False` keys are excluded from the first softmax and never
            kept; a row with no valid key gets weights 0.

    Returns:
        `(probabilities, weights, keep)`: float32 (float64 for float64
        scores) probabilities and weights, and the boolean keep mask.
    """
    axes = rule.key_axes
    scores = at_least_float32(scores)
    if attention_mask is not None:
        scores = ops.where(attention_mask, scores, PADDING_FILL)
    probabilities = softmax_over(scores, axes)
    # Comparisons carry no gradient: the keep decision is a constant for
    # backpropagation, and gradients flow through `kept / total` only.
    # A rule with a logit form decides as in `masked_weights`.
    keep = _logit_keep(rule, scores, thresholds, attention_mask)
    if keep is None:
        row_max = ops.max(probabilities, axis=axes, keepdims=True)
        dtype = keras.backend.standardize_dtype(probabilities.dtype)
        keep = rule.keep(probabilities, thresholds(dtype), row_max)
        if attention_mask is not None:
            keep = ops.logical_and(keep, attention_mask)
    dense = probabilities
    if attention_mask is not None:
        dense = ops.where(attention_mask, probabilities, 0.0)
    # A row whose keys are all padding keeps nothing: weights 0.
    floor = None if attention_mask is None else 1e-30
    weights = renormalise(scores, probabilities, keep, axes, floor)
    return probabilities, rule.weights(dense, weights), keep
