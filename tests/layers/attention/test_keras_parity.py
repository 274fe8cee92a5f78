"""`MaskedMultiHeadAttention`, a drop-in for `keras.layers.MultiHeadAttention`.

The cases follow Keras' own tests of `MultiHeadAttention` (ranks and
attention axes, broadcast masks, Keras masks, causal and sliding-window
masks, output shapes, gates, biases, identity-kernel numbers), written
here as comparisons: the same weights in both layers, the same outputs.
With `mask_thresholds=None` every computation is Keras'; with every
threshold 0 the masked path keeps every valid key, so it too must equal
the dense softmax, at every rank.
"""

import inspect

import keras
import numpy as np
import pytest

from keras_adrec.layers import MaskedMultiHeadAttention
from tests.test_case import assert_allclose

# Thresholds off, and two all-keeping masked paths (rank-generic code).
MODES = ["no_mask", "paper_zero", "relative_zero"]


def mode_kwargs(mode, num_heads):
    """The mask arguments of `mode` for a layer of `num_heads` heads."""
    if mode == "no_mask":
        return {"mask_thresholds": None}
    rule = mode.split("_")[0]
    return {"mask_thresholds": [0.0] * num_heads, "mask_rule": rule}


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def _array(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def twins(mode, query_shape, value_shape, key_shape=None, **kwargs):
    """A Keras layer and ours with `mode`, built and with equal weights."""
    reference = keras.layers.MultiHeadAttention(**kwargs)
    reference.build(query_shape, value_shape, key_shape)
    ours = MaskedMultiHeadAttention(
        **kwargs, **mode_kwargs(mode, kwargs["num_heads"])
    )
    ours.build(query_shape, value_shape, key_shape)
    ours.set_weights(reference.get_weights())
    return reference, ours


def assert_same_call(reference, ours, *args, atol=1e-5, **kwargs):
    expected = reference(*args, **kwargs)
    actual = ours(*args, **kwargs)
    if isinstance(expected, tuple):
        for a, e in zip(actual, expected):
            assert tuple(a.shape) == tuple(e.shape)
            assert_allclose(a, e, atol=atol, rtol=1e-5)
    else:
        assert tuple(actual.shape) == tuple(expected.shape)
        assert_allclose(actual, expected, atol=atol, rtol=1e-5)


def test_signature_follows_keras_then_keyword_only_mask_arguments():
    keras_params = list(
        inspect.signature(keras.layers.MultiHeadAttention).parameters.values()
    )
    params = list(inspect.signature(MaskedMultiHeadAttention).parameters)
    positional = [p.name for p in keras_params if p.kind != p.VAR_KEYWORD]
    assert params[: len(positional)] == positional
    ours = inspect.signature(MaskedMultiHeadAttention).parameters
    for name in ("mask_thresholds", "mask_rule", "min_keys"):
        assert ours[name].kind == inspect.Parameter.KEYWORD_ONLY
    assert ours["mask_warmup_steps"].kind == inspect.Parameter.KEYWORD_ONLY
    for p in keras_params:
        if p.kind != p.VAR_KEYWORD:
            assert ours[p.name].default == p.default, p.name


def test_positional_arguments_mean_what_they_mean_in_keras():
    # num_heads, key_dim, value_dim, dropout, use_bias, output_shape,
    # attention_axes.
    layer = MaskedMultiHeadAttention(2, 4, 3, 0.1, False, (5,), (1,))
    assert (layer.num_heads, layer.key_dim, layer.value_dim) == (2, 4, 3)
    assert (layer.dropout, layer.use_bias) == (0.1, False)
    assert layer.attention_axes == (1,)
    out = layer(_array((2, 6, 8), 0), _array((2, 6, 8), 1))
    assert tuple(out.shape) == (2, 6, 5)
    assert len(layer.trainable_weights) == 4  # no biases


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "q_dims, v_dims, mask_dims, attention_axes",
    [
        ((3, 4), (3, 2), (4, 2), (2,)),
        ((3, 4), (3, 2), (3, 4, 2), (2,)),
        ((3, 4), (3, 2), (3, 2, 4, 2), (2,)),
        ((3, 4), (3, 2), (3, 4, 3, 2), (1, 2)),
        ((5, 3, 4), (5, 3, 2), (3, 4, 3, 2), (2, 3)),
        ((5, 3, 4), (5, 3, 2), (5, 3, 4, 3, 2), (2, 3)),
    ],
    ids=[
        "rank4_mask2",
        "rank4_mask3",
        "rank4_mask4",
        "rank4_two_axes",
        "rank5_two_axes",
        "rank5_two_axes_full_mask",
    ],
)
def test_high_rank_inputs_and_broadcast_masks(
    mode, q_dims, v_dims, mask_dims, attention_axes
):
    query_shape = (3,) + q_dims + (8,)
    value_shape = (3,) + v_dims + (8,)
    reference, ours = twins(
        mode,
        query_shape,
        value_shape,
        num_heads=2,
        key_dim=2,
        attention_axes=attention_axes,
    )
    query, value = _array(query_shape, 1), _array(value_shape, 2)
    mask = np.random.default_rng(3).random((3,) + mask_dims) < 0.7
    assert_same_call(reference, ours, query, value)
    assert_same_call(
        reference,
        ours,
        query,
        value,
        attention_mask=mask,
        return_attention_scores=True,
    )


def folded_reference(layer, x, axes):
    """Attention over `axes` of `x`, by Keras on rank-3 sequences.

    The non-attended axes are folded into the batch and the attended ones
    into one token axis; a rank-3 Keras layer with `layer`'s weights
    attends over them, and the result is unfolded.
    """
    rank = x.ndim
    others = [a for a in range(1, rank - 1) if a not in axes]
    order = [0] + others + list(axes) + [rank - 1]
    moved = np.transpose(x, order)
    sequences = moved.reshape(
        (-1, int(np.prod([x.shape[a] for a in axes])), x.shape[-1])
    )
    flat = keras.layers.MultiHeadAttention(layer.num_heads, layer.key_dim)
    flat.build(sequences.shape, sequences.shape)
    flat.set_weights(layer.get_weights())
    out = np.asarray(flat(sequences, sequences)).reshape(moved.shape)
    return np.transpose(out, np.argsort(order))


@pytest.mark.parametrize("mode", MODES[1:])
@pytest.mark.parametrize(
    "attention_axes", [None, (1,), (3,), (1, 3), -2, (2, 3)]
)
def test_rank5_inputs_with_the_threshold_mask_on(mode, attention_axes):
    # Scores of rank 6 or 7, beyond TensorFlow's softmax kernel (Keras'
    # own layer fails there with one attention axis).
    x = _array((2, 3, 4, 5, 8), 4)
    layer = MaskedMultiHeadAttention(
        2, 4, attention_axes=attention_axes, **mode_kwargs(mode, 2)
    )
    output, weights = layer(x, x, return_attention_scores=True)
    axes = layer.attention_axes
    expected = folded_reference(layer, x, axes)
    assert_allclose(output, expected, atol=1e-5, rtol=1e-5)
    sums = np.asarray(weights).sum(axis=layer.key_axes)
    assert_allclose(sums, 1.0, atol=1e-5)


def test_rank5_inputs_with_a_sparse_mask_keep_the_rule():
    # Real thresholds at rank 5: each row keeps its most probable key, and
    # the weights over each row of kept keys sum to one.
    shape = (2, 3, 4, 5, 8)
    layer = MaskedMultiHeadAttention(
        2,
        4,
        attention_axes=(2, 3),
        mask_thresholds=[0.3, 0.9],
        kernel_initializer=keras.initializers.RandomNormal(0, 1.0),
    )
    x = _array(shape, 5)
    out, weights = layer(x, x, return_attention_scores=True)
    weights = np.asarray(weights)
    assert tuple(out.shape) == shape
    assert weights.shape == (2, 3, 2, 4, 5, 4, 5)
    assert_allclose(weights.sum(axis=(-2, -1)), 1.0, atol=1e-5)
    kept = (weights > 0).sum(axis=(-2, -1))
    assert kept.min() >= 1
    assert kept[:, :, 1].mean() < kept[:, :, 0].mean() <= 20


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "query_dims, value_dims, key_dims, output_shape",
    [
        ((4, 8), (2, 8), None, None),
        ((4, 8), (2, 8), (2, 3), None),
        ((4, 8), (2, 8), None, (3, 4)),
        ((4, 8), (2, 8), (2, 3), (1, 5)),
        ((4, 2, 3, 8), (1, 1, 5, 8), (1, 1, 5, 2), None),
        ((4, 2, 3, 8), (1, 1, 5, 8), (1, 1, 5, 2), (3, 2)),
        ((4, 2, 3, 8), (4, 2, 3, 7), (4, 2, 3, 8), None),
        ((4, 8), (2, 8), None, 6),
    ],
)
def test_output_shapes_key_inputs_and_value_dim(
    mode, query_dims, value_dims, key_dims, output_shape
):
    batch = 3
    query_shape = (batch,) + query_dims
    value_shape = (batch,) + value_dims
    key_shape = (batch,) + key_dims if key_dims else None
    reference, ours = twins(
        mode,
        query_shape,
        value_shape,
        key_shape,
        num_heads=2,
        key_dim=2,
        value_dim=3,
        output_shape=output_shape,
    )
    query, value = _array(query_shape, 6), _array(value_shape, 7)
    key = _array(key_shape, 8) if key_shape else None
    # With the scores: Keras' fused kernel on JAX needs value_dim == key_dim.
    assert_same_call(
        reference,
        ours,
        query=query,
        value=value,
        key=key,
        return_attention_scores=True,
    )
    expected = ours.compute_output_shape(query_shape, value_shape, key_shape)
    output, _ = ours(query, value, key, return_attention_scores=True)
    assert tuple(output.shape) == tuple(expected)


@pytest.mark.parametrize(
    "query_shape, value_shape, key_shape",
    [
        ((2, 4, 8), (2, 2, 7), (2,)),
        ((2, 4, 8), (2, 2, 8), (2, 1, 7)),
        ((2, 4, 2, 3, 8), (2, 1, 1, 5, 8), (2, 1, 15, 5, 2)),
    ],
)
def test_key_value_shape_mismatch_is_rejected(
    query_shape, value_shape, key_shape
):
    layer = MaskedMultiHeadAttention(4, 2, 2)
    with pytest.raises(ValueError, match="must be equal"):
        layer.compute_output_shape(query_shape, value_shape, key_shape)
    with pytest.raises(ValueError, match="must be equal"):
        layer(np.ones(query_shape), np.ones(value_shape), np.ones(key_shape))


@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_invalid_sizes_are_rejected(bad):
    with pytest.raises(ValueError, match="num_heads"):
        MaskedMultiHeadAttention(bad, 4)
    with pytest.raises(ValueError, match="key_dim"):
        MaskedMultiHeadAttention(4, bad)
    with pytest.raises(ValueError, match="value_dim"):
        MaskedMultiHeadAttention(4, 4, bad)
    with pytest.raises(ValueError, match="output_shape"):
        MaskedMultiHeadAttention(2, 16, output_shape=8.0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("use_causal_mask", [False, True])
def test_keras_masks_and_causal_mask(mode, use_causal_mask):
    # Padding masks from `Embedding(mask_zero=True)` reach the attention
    # as in Keras, and the query's mask propagates to the output.
    reference, ours = twins(mode, (3, 5, 8), (3, 3, 8), num_heads=2, key_dim=2)
    query_ids = np.array([[1, 2, 3, 0, 0], [3, 3, 1, 1, 2], [1, 0, 0, 0, 0]])
    value_ids = np.array([[5, 4, 0], [3, 0, 0], [2, 1, 1]])
    query_embedding = keras.layers.Embedding(4, 8, mask_zero=True)
    value_embedding = keras.layers.Embedding(6, 8, mask_zero=True)

    def call(layer):
        # Fresh inputs: the layer takes the Keras masks off its inputs.
        query = query_embedding(query_ids)
        value = value_embedding(value_ids)
        return layer(query, value, use_causal_mask=use_causal_mask)

    expected, actual = call(reference), call(ours)
    assert_allclose(actual._keras_mask, query_ids != 0, atol=0)
    mask = (query_ids != 0)[:, :, None] & (value_ids != 0)[:, None, :]
    if use_causal_mask:
        mask &= np.tril(np.ones((5, 3), bool))
    # Padded query rows attend to no key: Keras' fused kernel averages
    # every value there, its softmax path and the threshold path give
    # weights 0. The query's mask hides those rows downstream.
    rows = mask.any(axis=-1)
    assert_allclose(
        np.asarray(actual)[rows], np.asarray(expected)[rows], atol=1e-5
    )
    if mode != "no_mask":
        assert_allclose(np.asarray(actual)[~rows], 0.0, atol=0)
    # The same as an explicit attention mask.
    # Copies without Keras masks.
    query = np.asarray(query_embedding(query_ids))
    value = np.asarray(value_embedding(value_ids))
    explicit = ours(query, value, attention_mask=mask)
    assert_allclose(explicit, actual, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_attention_mask_of_every_broadcast_shape(mode):
    reference, ours = twins(mode, (2, 5, 8), (2, 5, 8), num_heads=2, key_dim=4)
    x = _array((2, 5, 8), 9)
    mask = np.tril(np.ones((5, 5), bool))
    outputs = []
    for m in (
        mask,
        np.tile(mask[None], (2, 1, 1)),
        np.tile(mask, (2, 2, 1, 1)),
    ):
        assert_same_call(reference, ours, x, x, attention_mask=m)
        outputs.append(ours(x, x, attention_mask=m))
    assert_allclose(outputs[1], outputs[0], atol=1e-6)
    assert_allclose(outputs[2], outputs[0], atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("use_causal_mask", [False, True])
def test_sliding_window(mode, use_causal_mask):
    reference, ours = twins(
        mode, (1, 6, 8), (1, 6, 8), num_heads=2, key_dim=4, sliding_window=3
    )
    x = _array((1, 6, 8), 10)
    assert_same_call(
        reference,
        ours,
        x,
        x,
        use_causal_mask=use_causal_mask,
        return_attention_scores=True,
    )
    _, scores = ours(
        x, x, use_causal_mask=use_causal_mask, return_attention_scores=True
    )
    i, j = np.indices((6, 6))
    allowed = np.abs(i - j) < 3
    if use_causal_mask:
        allowed &= j <= i
    scores = np.asarray(scores)[0]
    assert np.all(scores[:, ~allowed] == 0.0)
    assert np.all(scores[:, allowed] > 0.0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("return_attention_scores", [False, True])
def test_causal_mask_combines_with_an_explicit_mask(
    mode, return_attention_scores
):
    reference, ours = twins(mode, (2, 5, 8), (2, 5, 8), num_heads=2, key_dim=4)
    x = _array((2, 5, 8), 11)
    extra = np.ones((2, 5, 5), bool)
    extra[:, 2, 1] = False
    merged = extra & np.tril(np.ones((5, 5), bool))
    kwargs = {"return_attention_scores": return_attention_scores}
    assert_same_call(
        reference,
        ours,
        x,
        x,
        attention_mask=extra,
        use_causal_mask=True,
        **kwargs,
    )
    both = ours(x, x, attention_mask=extra, use_causal_mask=True, **kwargs)
    explicit = ours(x, x, attention_mask=merged, **kwargs)
    if return_attention_scores:
        both, explicit = both[0], explicit[0]
    assert_allclose(both, explicit, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"use_gate": True},
        {"use_bias": False, "value_dim": 4},
        {"use_gate": True, "use_bias": False, "value_dim": 4},
        {"kernel_constraint": "non_neg", "bias_initializer": "ones"},
    ],
    ids=["gate", "no_bias", "gate_no_bias", "constraint"],
)
def test_gate_bias_and_constraints(mode, kwargs):
    reference, ours = twins(
        mode, (2, 8, 16), (2, 4, 16), num_heads=2, key_dim=2, **kwargs
    )
    assert len(ours.trainable_weights) == len(reference.trainable_weights)
    if "kernel_constraint" in kwargs:
        constraint = ours.query_dense.kernel.constraint
        assert isinstance(constraint, keras.constraints.NonNeg)
    x, y = _array((2, 8, 16), 12), _array((2, 4, 16), 13)
    assert_same_call(reference, ours, x, y, return_attention_scores=True)


@pytest.mark.parametrize("mode", MODES)
def test_negative_attention_axes(mode):
    x = _array((2, 3, 8, 4), 14)
    positive = MaskedMultiHeadAttention(
        2, 4, attention_axes=2, **mode_kwargs(mode, 2)
    )
    negative = MaskedMultiHeadAttention(
        2, 4, attention_axes=-2, **mode_kwargs(mode, 2)
    )
    positive(x, x)
    negative(x, x)
    negative.set_weights(positive.get_weights())
    z_pos, a_pos = positive(x, x, return_attention_scores=True)
    z_neg, a_neg = negative(x, x, return_attention_scores=True)
    assert_allclose(z_neg, z_pos, atol=1e-6)
    assert_allclose(a_neg, a_pos, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_identity_kernels_give_keras_numbers(mode):
    # Keras' hand-made case: identity projections, zero biases; each query
    # gives its own key logit 1 / sqrt(8) and the others 0.
    num_heads = key_dim = 8
    query = key = np.identity(key_dim, "float32")[None]
    value = np.arange(64, dtype="float32").reshape(1, 8, 8) / 100.0
    layer = MaskedMultiHeadAttention(
        num_heads, key_dim, **mode_kwargs(mode, num_heads)
    )
    layer.build(query.shape, value.shape, key.shape)
    kernel = np.repeat(np.identity(key_dim)[:, None, :], num_heads, axis=1)
    bias = np.zeros((num_heads, key_dim))
    layer.set_weights([kernel, bias] * 3 + [kernel, np.zeros(key_dim)])
    output, scores = layer(
        query=query, value=value, key=key, return_attention_scores=True
    )
    expected_output = np.array(
        [2.406, 2.440, 2.473, 2.504, 2.535, 2.568, 2.602, 2.633]
    )
    assert_allclose(
        output, np.tile(expected_output[None, :, None], (1, 1, 8)), atol=1e-2
    )
    expected_scores = np.full((8, 8), 0.1187) + np.identity(8) * (
        0.1691 - 0.1187
    )
    assert_allclose(
        scores, np.tile(expected_scores[None, None], (1, 8, 1, 1)), atol=1e-3
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(1, 2, 3), (2, 3, 5)])
def test_symbolic_call_with_attention_scores(mode, shape):
    layer = MaskedMultiHeadAttention(4, 2, **mode_kwargs(mode, 4))
    x = keras.Input(batch_shape=shape)
    y = keras.Input(batch_shape=shape)
    symbolic = layer(x, y, return_attention_scores=True)
    assert len(symbolic) == 2
    eager = layer(
        _array(shape, 15), _array(shape, 16), return_attention_scores=True
    )
    assert tuple(eager[0].shape) == tuple(symbolic[0].shape)
    assert tuple(eager[1].shape) == tuple(symbolic[1].shape)


@pytest.mark.parametrize("mode", MODES)
def test_dropout_off_at_inference_and_masked_in_training(mode):
    reference, ours = twins(
        mode, (2, 6, 8), (2, 6, 8), num_heads=2, key_dim=4, dropout=0.5
    )
    x = _array((2, 6, 8), 17)
    assert_same_call(reference, ours, x, x, training=False)
    _, weights = ours(x, x, return_attention_scores=True, training=True)
    # The returned scores are the weights before dropout.
    assert_allclose(np.asarray(weights).sum(axis=-1), 1.0, atol=1e-5)
    trained = ours(x, x, training=True)
    assert np.abs(np.asarray(trained) - np.asarray(ours(x, x))).max() > 1e-4


def test_flash_attention_needs_the_mask_off():
    with pytest.raises(ValueError, match="flash_attention"):
        MaskedMultiHeadAttention(2, 4, flash_attention=True)
    layer = MaskedMultiHeadAttention(
        2, 4, flash_attention=False, mask_thresholds=None
    )
    assert layer.get_config()["mask_thresholds"] is None
