"""Per-head diagnostics of masked attention: maps, kept keys, gradients.

These read a `MaskedMultiHeadAttention` layer; they compute nothing the
layer's `call` does not (the first pass is the layer's own) and change
no state. The layer's `compute_attention_maps`, `mask_diagnostics` and
`head_gradient_norms` methods call them; a model's report is
`keras_adrec.models.mask_diagnostics`.
"""

import numpy as np
from keras import ops

from keras_adrec.layers.attention.fused_projection import fused_path_applies
from keras_adrec.layers.attention.threshold_softmax import PADDING_FILL
from keras_adrec.layers.attention.threshold_softmax import at_least_float32
from keras_adrec.layers.attention.threshold_softmax import softmax_over


def first_pass(layer, query, value, key=None, attention_mask=None):
    """`(probabilities, weights, keep)` as `call` computes them.

    In inference mode: no dropout, the warm-up counter stays.

    Args:
        layer: a `MaskedMultiHeadAttention`.
        query: tensor of shape `(B, T, dim)`.
        value: tensor of shape `(B, S, dim)`.
        key: optional tensor of shape `(B, S, dim)`; `value` if omitted.
        attention_mask: optional boolean tensor of shape `(B, T, S)`.

    Returns:
        The first softmax and the weights (float32, shape
        `(B, H, T, S)`) and the boolean keep mask. Without thresholds
        the weights are the softmax and every valid key is kept.
    """
    key = value if key is None else key
    query, value, key = layer._as_tensors(query, value, key)
    if not layer.built:
        layer.build(query.shape, value.shape, key.shape)
    if attention_mask is None and fused_path_applies(layer, query, value, key):
        # Exactly the computation of `call`.
        scores, _ = layer._fused_scores(query, value, key)
    else:
        scores = layer._attention_scores(
            layer._query_dense(query), layer._key_dense(key)
        )
    if layer.mask_thresholds is not None:
        return layer._threshold_softmax(scores, attention_mask)
    scores = at_least_float32(scores)
    keep = ops.ones_like(scores, dtype="bool")
    if attention_mask is not None:
        attention_mask = layer._expand_attention_mask(
            attention_mask, len(scores.shape)
        )
        scores = ops.where(attention_mask, scores, PADDING_FILL)
        keep = ops.logical_and(keep, attention_mask)
    probabilities = softmax_over(scores, layer.key_axes)
    return probabilities, probabilities, keep


def attention_maps(layer, query, value, key=None, attention_mask=None):
    """First-pass and masked attention probabilities, for figures.

    Args:
        layer: a `MaskedMultiHeadAttention`.
        query: tensor of shape `(B, T, dim)`.
        value: tensor of shape `(B, S, dim)`.
        key: optional tensor of shape `(B, S, dim)`; `value` if omitted.
        attention_mask: optional boolean tensor of shape `(B, T, S)`.

    Returns:
        A dict with `"unmasked"` (the softmax of the scores) and
        `"masked"` (the weights the layer uses), each float32 of shape
        `(B, H, T, S)`. Without thresholds both are the softmax.
    """
    probabilities, weights, _ = first_pass(
        layer, query, value, key, attention_mask
    )
    return {"unmasked": probabilities, "masked": weights}


def keep_statistics(layer, query, value=None, key=None, attention_mask=None):
    """Per-head statistics of the keep mask, to see whether heads learn.

    A head whose query rows keep a single key is hard attention: its
    weight is exactly 1 and, under the `"paper"` rule, such a row sends no
    gradient to the head's query and key kernels.

    Args:
        layer: a `MaskedMultiHeadAttention`.
        query: tensor of shape `(B, T, dim)`.
        value: tensor of shape `(B, S, dim)`; `query` if omitted.
        key: optional tensor of shape `(B, S, dim)`; `value` if omitted.
        attention_mask: optional boolean tensor of shape `(B, T, S)`.

    Returns:
        A dict of float64 numpy arrays of shape `(num_heads,)`:
        `"mean_kept_keys"` (kept keys per query row, averaged over rows and
        samples), `"single_key_fraction"` (fraction of query rows that keep
        exactly one key) and `"thresholds"` (the thresholds in use at the
        current step; all zero without a mask, where every valid key is
        kept).
    """
    value = query if value is None else value
    _, _, keep = first_pass(layer, query, value, key, attention_mask)
    counts = ops.convert_to_numpy(
        ops.sum(ops.cast(keep, "int32"), axis=layer.key_axes)
    )
    num_heads = layer.num_heads
    # counts: (B, <batch dims>, H, <query axes>) -> (H, rows).
    head_axis = counts.ndim - len(layer.key_axes) - 1
    counts = np.moveaxis(counts, head_axis, 0).reshape(num_heads, -1)
    return {
        "mean_kept_keys": counts.mean(axis=1).astype("float64"),
        "single_key_fraction": (counts == 1).mean(axis=1).astype("float64"),
        "thresholds": layer.thresholds_in_use(),
    }


def head_gradient_norms(layer, gradients):
    """Per-head L2 norms of query and key kernel gradients.

    Args:
        layer: a built `MaskedMultiHeadAttention`.
        gradients: a dict mapping the layer's variables (or their `path`s)
            to gradients, e.g.
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
    num_heads = layer.num_heads
    result = {}
    for name, dense in (
        ("query_kernel", layer.query_dense),
        ("key_kernel", layer.key_dense),
    ):
        grad = by_path.get(dense.kernel.path)
        if grad is None:
            result[name] = np.zeros(num_heads)
            continue
        grad = np.asarray(ops.convert_to_numpy(grad), "float64")
        head_axis = grad.ndim - 2
        grad = np.moveaxis(grad, head_axis, 0).reshape(num_heads, -1)
        result[name] = np.sqrt((grad**2).sum(axis=1))
    return result
