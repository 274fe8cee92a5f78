"""Keep rules of masked attention: which keys survive a head's threshold.

One small class per rule, registered by name in `MASK_RULE_CLASSES`;
`MaskedMultiHeadAttention(mask_rule=...)` looks its rule up there. A rule
sees the first-pass probabilities `p = softmax(scores)` of every head and
query row and returns the boolean keep decision; the attention weights
are then the kept probabilities renormalised (`threshold_softmax`). A
rule may also change the weights' gradient (`"straight_through"`).

Thresholds arrive as a numpy array when they are constant, and as a
tensor while a warm-up ramps them (`threshold_warmup`).
"""

import numpy as np
from keras import ops

DEFAULT_MASK_RULE = "paper"
DEFAULT_MIN_KEYS = 2


def kth_largest(probabilities, k, axes, row_max=None, removed=-1.0):
    """The k-th largest probability (or logit) of each row, keepdims.

    Counted with repeats, as in a descending sort: a row whose two largest
    entries tie has the maximum as its second largest. For `k <= 4` this
    takes `k` max-reductions instead of `top_k`, which sorts (slow on CPU,
    and XLA on CPU lowers it to a full sort of every row).

    Args:
        probabilities: tensor of values greater than `removed`.
        k: int >= 1.
        axes: the trailing axes that form a row.
        row_max: optional precomputed maximum of each row, keepdims.
        removed: a value below every entry, which marks the entries
            already counted. Defaults to `-1.0` (below any probability);
            logits use `-inf`.

    Returns:
        A tensor with size 1 on `axes`.
    """
    sizes = [probabilities.shape[axis] for axis in axes]
    if None not in sizes:
        k = min(k, int(np.prod(sizes)))
    if k > 4:
        return top_k_kth(probabilities, k, axes)
    if row_max is None:
        row_max = ops.max(probabilities, axis=axes, keepdims=True)
    kth, seen, remaining, largest = row_max, None, probabilities, row_max
    for _ in range(1, k):
        # `largest` is the current distinct value; `seen` counts the
        # entries at or above it.
        at_largest = ops.greater_equal(remaining, largest)
        count = ops.sum(ops.cast(at_largest, "int32"), axis=axes, keepdims=True)
        seen = count if seen is None else seen + count
        # `removed` is below every entry: it takes one out of the race.
        remaining = ops.where(at_largest, removed, remaining)
        largest = ops.max(remaining, axis=axes, keepdims=True)
        kth = ops.where(ops.greater_equal(seen, k), kth, largest)
    return kth


def top_k_kth(probabilities, k, axes):
    """The k-th largest probability of each row over `axes`, by `top_k`."""
    num_axes = len(axes)
    flat = probabilities
    if num_axes > 1:
        shape = ops.shape(probabilities)
        flat = ops.reshape(probabilities, tuple(shape[:-num_axes]) + (-1,))
    values, _ = ops.top_k(flat, k, sorted=True)
    kth = values[..., k - 1 :]
    for _ in range(num_axes - 1):
        kth = ops.expand_dims(kth, -1)
    return kth


class MaskRule:
    """Base class: the keep decision of one rule.

    Args:
        key_axes: tuple of ints. The trailing axes of the probabilities
            that index keys (one per attention axis).
        min_keys: int >= 1. Keys a rule always keeps, where it uses it.
    """

    name = None

    def __init__(self, key_axes, min_keys=DEFAULT_MIN_KEYS):
        self.key_axes = tuple(key_axes)
        self.min_keys = int(min_keys)

    def keep(self, probabilities, thresholds, row_max):
        """Boolean keep mask of the shape of `probabilities`.

        Args:
            probabilities: first-pass softmax, `(..., H, <queries>, <keys>)`.
            thresholds: per-head thresholds broadcastable to
                `probabilities`: a numpy array, or a tensor during warm-up.
            row_max: the maximum of each row over the key axes, keepdims.
        """
        raise NotImplementedError

    def logit_keep(self, scores, log_thresholds, row_max):
        """The keep mask decided from the logits, or `None`.

        A rule whose decision depends on the logits only through their
        differences (`log p_j - log p_k = s_j - s_k`) decides it without
        the first softmax; the weights are then one softmax over the kept
        logits (`threshold_softmax.masked_weights`). Rules that need the
        probabilities themselves return `None`.

        Args:
            scores: the logits, `(..., H, <queries>, <keys>)`, padded
                keys filled with a large negative value.
            log_thresholds: `log(theta_h)` broadcastable to the scores
                (`-inf` for a zero threshold): a numpy array, or a tensor
                during warm-up.
            row_max: the maximum logit of each row, keepdims.
        """
        return None

    def weights(self, probabilities, renormalised):
        """Attention weights from the dense and the renormalised ones.

        Args:
            probabilities: the first-pass softmax, zero on padded keys.
            renormalised: the kept probabilities renormalised.

        Most rules use the renormalised weights as they are.
        """
        return renormalised


class PaperRule(MaskRule):
    """Keep `p > theta_h`, and always the most probable key.

    The paper's absolute threshold (eq. 2-3). With `theta_h` well above
    `1 / S` for `S` keys most rows keep one key: weight exactly 1, no
    gradient to the head's query and key kernels.
    """

    name = "paper"

    def keep(self, probabilities, thresholds, row_max):
        if isinstance(thresholds, np.ndarray):
            # (p > theta) | (p == max p) as one comparison:
            # p >= min(next float above theta, max p).
            above = np.nextafter(
                thresholds, np.asarray(np.inf, thresholds.dtype)
            )
            cutoff = ops.minimum(ops.convert_to_tensor(above), row_max)
            return ops.greater_equal(probabilities, cutoff)
        return ops.logical_or(
            ops.greater(probabilities, thresholds),
            ops.greater_equal(probabilities, row_max),
        )


class RelativeRule(MaskRule):
    """Keep `p >= theta_h * max p`, and the `min_keys` most probable keys.

    A logit margin of `ln(1 / theta_h)` below the best key: dense while the
    scores are flat, sparse as a head sharpens; with `min_keys >= 2` no row
    is reduced to one key. The layer decides it on the logits
    (`logit_keep`), so its `call` takes one softmax, over the kept keys.
    """

    name = "relative"

    def keep(self, probabilities, thresholds, row_max):
        kth = kth_largest(probabilities, self.min_keys, self.key_axes, row_max)
        cutoff = ops.minimum(thresholds * row_max, kth)
        return ops.greater_equal(probabilities, cutoff)

    def logit_keep(self, scores, log_thresholds, row_max):
        # p_j >= theta max p  <=>  s_j >= max s + log(theta), and the
        # k-th largest logit is the logit of the k-th largest p.
        kth = kth_largest(
            scores, self.min_keys, self.key_axes, row_max, -np.inf
        )
        cutoff = ops.minimum(row_max + log_thresholds, kth)
        return ops.greater_equal(scores, cutoff)


class StraightThroughRule(PaperRule):
    """The paper's forward pass with the dense softmax's backward pass.

    `a = p + stop_gradient(a_paper - p)`, where `p` is zero on padded keys.
    """

    name = "straight_through"

    def weights(self, probabilities, renormalised):
        return probabilities + ops.stop_gradient(renormalised - probabilities)


MASK_RULE_CLASSES = {
    rule.name: rule for rule in (PaperRule, StraightThroughRule, RelativeRule)
}
MASK_RULES = tuple(MASK_RULE_CLASSES)


def check_mask_rule(mask_rule, min_keys):
    """Raise a `ValueError` naming a bad `mask_rule` or `min_keys`."""
    if mask_rule not in MASK_RULE_CLASSES:
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


def get_mask_rule(mask_rule, key_axes, min_keys=DEFAULT_MIN_KEYS):
    """The rule registered as `mask_rule`, for scores with `key_axes`."""
    check_mask_rule(mask_rule, min_keys)
    return MASK_RULE_CLASSES[mask_rule](key_axes, min_keys)


def resolve_mask_thresholds(mask_thresholds, num_heads):
    """Turn a `mask_thresholds` argument into a list of floats or `None`.

    Args:
        mask_thresholds: `"geometric"` (`[1e-1, 1e-2, ..., 1e-H]`), a
            sequence of `num_heads` floats in [0, 1), or `None`.
        num_heads: int. Number of heads.

    Returns:
        A list of `num_heads` Python floats, or `None`.

    Raises:
        ValueError: for any other value.
    """
    if mask_thresholds is None:
        return None
    expected = (
        "`mask_thresholds` must be 'geometric', a list of "
        f"{num_heads} floats in [0, 1) or None. "
        f"Received: mask_thresholds={mask_thresholds!r}"
    )
    if isinstance(mask_thresholds, str):
        if mask_thresholds == "geometric":
            return [10.0 ** -(head + 1) for head in range(num_heads)]
        raise ValueError(expected)
    try:
        values = [float(v) for v in np.asarray(mask_thresholds).ravel()]
        if np.ndim(mask_thresholds) != 1:
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(expected) from None
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
