import keras
import numpy as np
import pytest

from keras_adrec.layers.sequence import TimeSeriesLayer
from tests.backends.autodiff import output_and_gradients
from tests.layers.sequence import numpy_references as ref
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip
from tests.test_case import assert_keras_save_load
from tests.test_case import assert_serialization_round_trip


def _inputs(batch=4, length=5, width=6, seed=0):
    rng = np.random.default_rng(seed)
    candidate = rng.normal(size=(batch, width)).astype("float32")
    history = rng.normal(size=(batch, length, width)).astype("float32")
    return candidate, history


@pytest.mark.parametrize("inner", ["dot", "ind", "def"])
@pytest.mark.parametrize("mechanism", ["mlp", "mul", "softmax"])
def test_matches_numpy_reference(inner, mechanism):
    candidate, history = _inputs()
    layer = TimeSeriesLayer(
        num_heads=2, inner=inner, mechanism=mechanism, attention_units=[3]
    )
    output = layer(candidate, history)
    assert output.shape == (4, 12)
    expected = ref.time_series_layer(layer, candidate, history)
    assert_allclose(output, expected, atol=1e-5, rtol=1e-5)


def test_without_projection_matches_reference():
    candidate, history = _inputs(seed=1)
    layer = TimeSeriesLayer(inner="def", mechanism="mul", projection=False)
    output = layer(candidate, history)
    expected = ref.time_series_layer(layer, candidate, history)
    assert_allclose(output, expected, atol=1e-4, rtol=1e-5)


def test_dot_mul_by_hand():
    # Unit vectors: with inner "dot" and mechanism "mul" the weights are
    # the cosines, so c = sum_t cos(h_t, w) h_t / |h_t|.
    candidate = np.array([[2.0, 0.0]], "float32")
    history = np.array([[[3.0, 0.0], [0.0, 5.0], [1.0, 1.0]]], "float32")
    layer = TimeSeriesLayer(inner="dot", mechanism="mul")
    expected = [[1.0 + 0.5, 0.5]]  # 1*(1,0) + 0*(0,1) + s*(s,s), s=1/sqrt2
    assert_allclose(layer(candidate, history), expected, atol=1e-6)


def test_softmax_weights_sum_to_one_over_unit_history():
    # All history vectors equal: the softmax context is that unit vector.
    candidate, _ = _inputs(batch=3, width=4)
    history = np.tile(np.array([0.0, 3.0, 0.0, 4.0], "float32"), (3, 5, 1))
    layer = TimeSeriesLayer(mechanism="softmax")
    expected = np.tile([0.0, 0.6, 0.0, 0.8], (3, 1))
    assert_allclose(layer(candidate, history), expected, atol=1e-6)


def test_zero_vectors_project_to_zero_with_finite_gradient():
    candidate = np.zeros((2, 3), "float32")
    history = np.zeros((2, 4, 3), "float32")
    layer = TimeSeriesLayer()

    def loss_fn(tensors):
        output = layer(candidate, tensors[0])
        return keras.ops.sum(output), output

    # Each backend's own autodiff: a norm's gradient at 0 is where
    # TensorFlow and JAX may differ.
    output, (gradient,) = output_and_gradients(loss_fn, [history], jit=False)
    assert_allclose(output, np.zeros((2, 3)))
    assert np.all(np.isfinite(gradient))


def test_weights_per_head():
    candidate, history = _inputs(length=7, width=5)
    layer = TimeSeriesLayer(num_heads=3, attention_units=[4, 2])
    layer(candidate, history)
    kernels = [w for w in layer.weights if "inner_kernel" in w.path]
    assert [tuple(w.shape) for w in kernels] == [(5, 5)] * 3
    # Each head's attention MLP: 7 -> 4 -> 2 -> 7 (kernel and bias each).
    assert len(layer.weights) == 3 + 3 * 6
    assert tuple(layer.attention_mlps[0].dense_layers[-1].kernel.shape) == (
        2,
        7,
    )
    dot = TimeSeriesLayer(inner="dot", mechanism="softmax")
    dot(candidate, history)
    assert dot.weights == []


def test_functional_model_and_saving(tmp_path):
    candidate, history = _inputs()
    inputs = [keras.Input((6,)), keras.Input((5, 6))]
    outputs = TimeSeriesLayer(num_heads=2)(*inputs)
    assert tuple(outputs.shape) == (None, 12)
    model = keras.Model(inputs, outputs)
    assert_keras_save_load(model, [candidate, history], tmp_path)


def test_config_round_trip():
    layer = TimeSeriesLayer(
        num_heads=2,
        inner="ind",
        mechanism="softmax",
        attention_units=[8],
        projection=False,
        kernel_initializer="he_normal",
        name="tsl",
    )
    clone = assert_config_round_trip(layer)
    assert clone.inner == "ind" and clone.attention_units == [8]
    assert_serialization_round_trip(layer)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0}, "`num_heads` must be a positive int"),
        ({"num_heads": 1.5}, "`num_heads` must be a positive int"),
        ({"inner": "cosine"}, "`inner` must be one of"),
        ({"mechanism": "max"}, "`mechanism` must be one of"),
        ({"attention_units": [0]}, "`attention_units` must be a list"),
        ({"attention_units": 15}, "`attention_units` must be a list"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TimeSeriesLayer(**kwargs)


def test_invalid_shapes():
    layer = TimeSeriesLayer()
    with pytest.raises(ValueError, match="same width W"):
        layer(np.zeros((2, 4), "float32"), np.zeros((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match="history to have shape"):
        TimeSeriesLayer()(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="history length to be known"):
        TimeSeriesLayer()(keras.Input((4,)), keras.Input((None, 4)))
    # Without the attention MLP a variable history length is fine.
    outputs = TimeSeriesLayer(mechanism="softmax")(
        keras.Input((4,)), keras.Input((None, 4))
    )
    assert tuple(outputs.shape) == (None, 4)
