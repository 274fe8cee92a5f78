"""Numpy references and helpers shared by the attention and block tests."""

import keras
import numpy as np

from keras_adrec.layers import MaskedMultiHeadAttention


def numpy_attention(
    query, value, weights, thresholds, attention_mask=None, key=None
):
    """Masked multi-head attention (paper eq. 1-4) in float64 numpy.

    `weights` are a Keras MHA's `get_weights()`: query, key, value and
    output kernels with their biases. Returns `(output, p, a)`: the layer
    output, the first-pass probabilities and the masked weights, the last
    two of shape (B, H, T, S). `thresholds=None` is plain attention.
    """
    wq, bq, wk, bk, wv, bv, wo, bo = [np.float64(w) for w in weights]
    query = np.float64(query)
    value = np.float64(value)
    key = value if key is None else np.float64(key)
    key_dim = wq.shape[-1]
    q = np.einsum("btd,dhk->bthk", query, wq) + bq
    k = np.einsum("bsd,dhk->bshk", key, wk) + bk
    v = np.einsum("bsd,dhk->bshk", value, wv) + bv
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(key_dim)
    valid = np.ones(scores.shape, bool)
    if attention_mask is not None:
        valid = np.broadcast_to(
            np.asarray(attention_mask, bool)[:, None], scores.shape
        )
    scores = np.where(valid, scores, -np.inf)
    exp = np.exp(scores - scores.max(-1, keepdims=True))
    p = exp / exp.sum(-1, keepdims=True)
    if thresholds is None:
        a = p
    else:
        theta = np.asarray(thresholds, np.float64)[None, :, None, None]
        keep = (p > theta) | (p == p.max(-1, keepdims=True))
        keep &= valid
        a = p * keep / (p * keep).sum(-1, keepdims=True)
    heads = np.einsum("bhts,bshk->bthk", a, v)
    output = np.einsum("bthk,hkd->btd", heads, wo) + bo
    return output, p, a


def assert_away_from_thresholds(p, thresholds, margin=1e-6):
    """Float32 and float64 keep decisions agree when no p is near a theta.

    A zero threshold is skipped: float32 may round a tiny p to 0 and drop
    it, which changes the weights by less than float32 resolution.
    """
    theta = np.asarray(thresholds)[None, :, None, None]
    distance = np.where(theta > 0, np.abs(p - theta), np.inf)
    assert np.min(distance) > margin, "pick another seed"


def random_tokens(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32") * (
        scale
    )


def built_layer(num_heads=2, key_dim=4, dim=8, seq=6, **kwargs):
    kwargs.setdefault(
        "kernel_initializer", keras.initializers.RandomNormal(0, 0.5)
    )
    kwargs.setdefault(
        "bias_initializer", keras.initializers.RandomNormal(0, 0.5)
    )
    # The tests written against `numpy_attention` test the paper's rule.
    kwargs.setdefault("mask_rule", "paper")
    layer = MaskedMultiHeadAttention(num_heads, key_dim, **kwargs)
    layer.build((None, seq, dim), (None, seq, dim))
    return layer


def numpy_rule_attention(
    query, value, weights, thresholds, rule, min_keys=2, attention_mask=None
):
    """The layer's forward pass for `rule`, in float64 numpy.

    paper: keep = (p > theta) | (p == max p).
    straight_through: the paper's keep (its forward pass is the paper's).
    relative: keep = (p >= theta * max p) | (p >= k-th largest p),
    k = min_keys. Weights: a = p keep / sum(p keep).
    Returns `(output, p, a, keep)`.
    """
    wq, bq, wk, bk, wv, bv, wo, bo = [np.float64(w) for w in weights]
    query = np.float64(query)
    value = np.float64(value)
    key_dim = wq.shape[-1]
    q = np.einsum("btd,dhk->bthk", query, wq) + bq
    k = np.einsum("bsd,dhk->bshk", value, wk) + bk
    v = np.einsum("bsd,dhk->bshk", value, wv) + bv
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(key_dim)
    valid = np.ones(scores.shape, bool)
    if attention_mask is not None:
        valid = np.broadcast_to(
            np.asarray(attention_mask, bool)[:, None], scores.shape
        )
    scores = np.where(valid, scores, -np.inf)
    exp = np.exp(scores - scores.max(-1, keepdims=True))
    p = exp / exp.sum(-1, keepdims=True)
    theta = np.asarray(thresholds, np.float64)[None, :, None, None]
    row_max = p.max(-1, keepdims=True)
    if rule == "relative":
        kth = -np.sort(-p, axis=-1)[..., min(min_keys, p.shape[-1]) - 1]
        keep = (p >= theta * row_max) | (p >= kth[..., None])
    else:
        keep = (p > theta) | (p == row_max)
    keep &= valid
    a = p * keep / (p * keep).sum(-1, keepdims=True)
    heads = np.einsum("bhts,bshk->bthk", a, v)
    output = np.einsum("bthk,hkd->btd", heads, wo) + bo
    return output, p, a, keep


def assert_away_from_relative_cutoff(p, thresholds, margin=1e-6):
    """No p lies near theta * max p, so float32 and float64 agree."""
    theta = np.asarray(thresholds)[None, :, None, None]
    distance = np.abs(p - theta * p.max(-1, keepdims=True))
    assert np.min(distance) > margin, "pick another seed"
