"""The fused path of masked self-attention: few, large 2D matmuls.

The common Ad-Rec case (rank-3 tokens attending over axis 1, no attention
mask) projects query, key and value with plain matmuls of the
`(B * T, dim)` tokens instead of three `EinsumDense` calls, lays heads out
as `(B, H, T, d)` once, and projects the output with one matmul. The
weights are the layer's own `EinsumDense` kernels, reshaped.
"""

import math

import keras
from keras import ops

from keras_adrec.layers.attention.threshold_softmax import at_least_float32


def fused_path_applies(layer, query, value, key):
    """Whether `layer.call` can take the fused path.

    The common Ad-Rec case: a threshold mask, rank-3 inputs attending
    over axis 1, no attention mask of any kind, and the default
    projections (no gate, sliding window, custom output shape,
    quantization or LoRA).
    """
    if layer.mask_thresholds is None or len(query.shape) != 3:
        return False
    if tuple(layer._attention_axes) != (1,):
        return False
    if layer._output_shape or getattr(layer, "_use_gate", False):
        return False
    if getattr(layer, "_sliding_window", None) is not None:
        return False
    for tensor in (query, value, key):
        if getattr(tensor, "_keras_mask", None) is not None:
            return False
    for dense in (
        layer._query_dense,
        layer._key_dense,
        layer._value_dense,
        layer._output_dense,
    ):
        if getattr(dense, "quantization_mode", None) or getattr(
            dense, "lora_enabled", False
        ):
            return False
    return True


def projection(dense):
    """`dense`'s kernel as a 2D `(in, out)` matrix and its flat bias."""
    kernel = ops.reshape(dense.kernel, (dense.kernel.shape[0], -1))
    bias = None if dense.bias is None else ops.reshape(dense.bias, (-1,))
    return kernel, bias


def _heads(tokens, num_tokens, num_heads, head_size):
    """`(B * T, H * d)` -> `(B, H, T, d)`."""
    tokens = ops.reshape(tokens, (-1, num_tokens, num_heads, head_size))
    return ops.transpose(tokens, (0, 2, 1, 3))


def fused_scores(query, value, key, denses, num_heads, key_dim, value_dim):
    """Scaled scores `(B, H, T, S)` (float32 or wider) and values
    `(B, H, S, d_v)`.

    For self-attention (`query`, `key` and `value` the same tensor) one
    matmul of the `(B * T, dim)` tokens with the concatenated query, key
    and value kernels projects all three; otherwise one 2D matmul each.
    Heads are laid out `(B, H, T, d)` once, so that the score product is a
    batched matmul with leading batch axes (no transpose inside `einsum`).

    Args:
        query, value, key: rank-3 tensors `(B, T, dim)`, `(B, S, dim)`.
        denses: the query, key and value `EinsumDense` layers.
        num_heads, key_dim, value_dim: the attention's sizes.
    """
    num_queries = query.shape[1]
    num_keys = value.shape[1]
    if num_queries is None:
        num_queries = ops.shape(query)[1]
    if num_keys is None:
        num_keys = ops.shape(value)[1]
    (wq, bq), (wk, bk), (wv, bv) = (projection(dense) for dense in denses)
    # A scope of its own, for profiles (benchmarks.step_profile).
    with keras.name_scope("qkv_projection"):
        if query is value and key is value:
            projected = ops.matmul(
                ops.reshape(query, (-1, query.shape[-1])),
                ops.concatenate([wq, wk, wv], axis=1),
            )
            if bq is not None:
                projected = projected + ops.concatenate([bq, bk, bv], axis=0)
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
                q = _heads(q, num_queries, num_heads, key_dim)
                k = _heads(k, num_keys, num_heads, key_dim)
                v = _heads(v, num_keys, num_heads, value_dim)
        else:

            def project(tokens, kernel, bias, num_tokens, head_size):
                tokens = ops.matmul(
                    ops.reshape(tokens, (-1, tokens.shape[-1])), kernel
                )
                if bias is not None:
                    tokens = tokens + bias
                return _heads(tokens, num_tokens, num_heads, head_size)

            q = project(query, wq, bq, num_queries, key_dim)
            k = project(key, wk, bk, num_keys, key_dim)
            v = project(value, wv, bv, num_keys, value_dim)
    # Float16 logits overflow for large inputs; compute them in float32.
    q = at_least_float32(q)
    inverse_sqrt_key_dim = 1.0 / math.sqrt(float(key_dim))
    q = ops.multiply(q, ops.cast(inverse_sqrt_key_dim, q.dtype))
    scores = ops.einsum("bhtd,bhsd->bhts", q, at_least_float32(k))
    return scores, v


def fused_output(weights, v, output_dense, num_queries):
    """`sum_s a v` per head, merged and projected: `(B, T, dim_out)`.

    Args:
        weights: attention weights `(B, H, T, S)`, dropout applied.
        v: values `(B, H, S, d_v)`.
        output_dense: the layer's output `EinsumDense`.
        num_queries: `T` (an int when known).
    """
    heads = ops.einsum("bhts,bhsd->bhtd", weights, v)
    num_heads, value_dim = v.shape[1], v.shape[-1]
    if num_queries is None:
        num_queries = ops.shape(heads)[2]
    heads = ops.reshape(
        ops.transpose(heads, (0, 2, 1, 3)), (-1, num_heads * value_dim)
    )
    with keras.name_scope("output_projection"):
        output = ops.matmul(
            heads,
            ops.reshape(output_dense.kernel, (num_heads * value_dim, -1)),
        )
        if output_dense.bias is not None:
            output = output + output_dense.bias
    return ops.reshape(output, (-1, num_queries, output.shape[-1]))
