"""Tests of `keras_adrec.layers.AutoIntInteraction` (AutoInt).

References: a numpy forward pass written from Song et al. 2019, eq. 5-8
(loops over heads), and `keras.layers.MultiHeadAttention` with an identity
output projection for the scaled, residual-free case.
"""

import keras
import numpy as np
import pytest

from keras_adrec.layers import AutoIntInteraction
from tests import test_case


def _features(batch=3, num=4, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, dim)).astype("float32") for _ in range(num)]


def _numpy_autoint(features, layer, key_dim, use_scaling):
    """Song et al. eq. 5-8, one head at a time."""
    e = np.stack(features, axis=1).astype("float64")  # [B, F, D]
    num_heads = layer.num_heads
    for index in range(layer.num_layers):
        w_query = keras.ops.convert_to_numpy(layer.query_kernels[index])
        w_key = keras.ops.convert_to_numpy(layer.key_kernels[index])
        w_value = keras.ops.convert_to_numpy(layer.value_kernels[index])
        heads = []
        for h in range(num_heads):
            cols = slice(h * key_dim, (h + 1) * key_dim)
            q, k, v = (
                e @ w_query[:, cols],
                e @ w_key[:, cols],
                e @ w_value[:, cols],
            )
            psi = np.einsum("bmd,bkd->bmk", q, k)  # eq. 5
            if use_scaling:
                psi = psi / np.sqrt(key_dim)
            alpha = np.exp(psi - psi.max(axis=-1, keepdims=True))
            alpha = alpha / alpha.sum(axis=-1, keepdims=True)
            heads.append(np.einsum("bmk,bkd->bmd", alpha, v))  # eq. 6
        combined = np.concatenate(heads, axis=-1)  # eq. 7
        if layer.use_residual:
            w_res = keras.ops.convert_to_numpy(layer.residual_kernels[index])
            combined = combined + e @ w_res
        e = np.maximum(combined, 0.0)  # eq. 8
    return e.reshape(e.shape[0], -1)


GRID = [
    {"num_layers": 1, "num_heads": 2},
    {"num_layers": 2, "num_heads": 2, "key_dim": 3},
    {"num_layers": 1, "num_heads": 1, "use_residual": False},
    {"num_layers": 2, "num_heads": 4, "use_scaling": True},
]


@pytest.mark.parametrize("kwargs", GRID)
def test_matches_numpy_song_et_al(kwargs):
    features = _features()
    layer = AutoIntInteraction(**kwargs)
    outputs = layer(features)
    key_dim = kwargs.get("key_dim") or 4 // kwargs["num_heads"]
    expected = _numpy_autoint(
        features, layer, key_dim, kwargs.get("use_scaling", False)
    )
    test_case.assert_allclose(outputs, expected, atol=1e-5, rtol=1e-5)
    assert outputs.shape == (3, 4 * kwargs["num_heads"] * key_dim)
    assert tuple(outputs.shape) == layer.compute_output_shape(
        [f.shape for f in features]
    )


def test_matches_keras_multi_head_attention():
    """Scaled, no residual: ReLU(MHA(e, e)) with an identity output."""
    features = _features(seed=1)
    stacked = np.stack(features, axis=1)
    num_heads, key_dim, dim = 2, 3, 4
    layer = AutoIntInteraction(
        num_heads=num_heads,
        key_dim=key_dim,
        use_residual=False,
        use_scaling=True,
    )
    outputs = layer(stacked)
    width = num_heads * key_dim
    attention = keras.layers.MultiHeadAttention(
        num_heads=num_heads,
        key_dim=key_dim,
        use_bias=False,
        output_shape=width,
    )
    attention(stacked, stacked)
    attention.set_weights(
        [
            keras.ops.convert_to_numpy(kernel[0]).reshape(
                dim, num_heads, key_dim
            )
            for kernel in (
                layer.query_kernels,
                layer.key_kernels,
                layer.value_kernels,
            )
        ]
        + [np.eye(width, dtype="float32").reshape(num_heads, key_dim, width)]
    )
    expected = keras.ops.relu(attention(stacked, stacked))
    test_case.assert_allclose(
        outputs, keras.ops.reshape(expected, (3, -1)), atol=1e-5
    )


@pytest.mark.parametrize("use_residual", [False, True])
def test_weight_shapes(use_residual):
    layer = AutoIntInteraction(
        num_layers=2, num_heads=2, key_dim=3, use_residual=use_residual
    )
    layer.build((None, 5, 4))
    per_layer = 4 if use_residual else 3
    assert len(layer.weights) == 2 * per_layer
    shapes = [tuple(w.shape) for w in layer.weights]
    assert shapes[:per_layer] == [(4, 6)] * per_layer
    assert shapes[per_layer:] == [(6, 6)] * per_layer
    assert layer.weights[0].path.endswith("query_kernel_0")


def test_dropout_only_in_training():
    features = _features(batch=8, seed=2)
    layer = AutoIntInteraction(dropout=0.5)
    plain = AutoIntInteraction()
    plain(features)
    layer(features)
    layer.set_weights(plain.get_weights())
    test_case.assert_allclose(layer(features, training=False), plain(features))
    assert not np.allclose(
        keras.ops.convert_to_numpy(layer(features, training=True)),
        keras.ops.convert_to_numpy(plain(features)),
    )


def test_list_and_stacked_inputs_agree():
    features = _features(seed=3)
    layer = AutoIntInteraction()
    test_case.assert_allclose(
        layer(features), layer(np.stack(features, axis=1))
    )


def test_key_dim_zero_raises():
    with pytest.raises(ValueError, match="D // num_heads"):
        AutoIntInteraction(num_heads=8)(_features(dim=4))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_layers": 0}, "num_layers"),
        ({"num_heads": 0}, "num_heads"),
        ({"num_heads": 2.0}, "num_heads"),
        ({"key_dim": 0}, "key_dim"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AutoIntInteraction(**kwargs)


@pytest.mark.parametrize(
    "inputs, match",
    [
        ([np.zeros((2, 4), "float32")], "at least 2"),
        ([np.zeros((2, 4)), np.zeros((2, 3))], "same size D"),
        (np.zeros((2, 4), "float32"), "Received shape"),
    ],
)
def test_invalid_inputs(inputs, match):
    with pytest.raises(ValueError, match=match):
        AutoIntInteraction()(inputs)


def test_config_round_trip():
    layer = AutoIntInteraction(
        num_layers=3,
        num_heads=4,
        key_dim=8,
        use_residual=False,
        use_scaling=True,
        dropout=0.1,
        kernel_initializer="he_normal",
    )
    clone = test_case.assert_config_round_trip(layer)
    assert (clone.num_layers, clone.num_heads, clone.key_dim) == (3, 4, 8)
    test_case.assert_serialization_round_trip(layer)


def test_functional_model_trains_and_saves(tmp_path):
    features = _features(batch=16, seed=4)
    model = test_case.functional_model(
        AutoIntInteraction(num_layers=2), [(4,)] * 4
    )
    assert model.output_shape == (None, 16)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(features, np.ones((16, 16)), batch_size=16, verbose=0)
    assert all(
        not np.allclose(a, b) for a, b in zip(before, model.get_weights())
    )
    test_case.assert_keras_save_load(model, features, tmp_path)


def test_numpy_int_arguments():
    layer = AutoIntInteraction(num_layers=np.int64(2), num_heads=np.int32(2))
    assert (layer.num_layers, layer.num_heads) == (2, 2)
    test_case.assert_config_round_trip(layer)


def test_mixed_precision_close_to_float32():
    features = _features(seed=5)
    reference = AutoIntInteraction()
    expected = reference(features)
    policy = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        layer = AutoIntInteraction()
        layer.build([f.shape for f in features])
        layer.set_weights(reference.get_weights())
        outputs = layer(features)
    finally:
        keras.config.set_dtype_policy(policy)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float16"
    test_case.assert_allclose(
        keras.ops.cast(outputs, "float32"), expected, atol=2e-2, rtol=2e-2
    )
