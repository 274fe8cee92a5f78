"""The threshold warm-up: the ramp, the step counter and its saving."""

import keras
import numpy as np
import pytest

from keras_adrec.layers import MaskedMultiHeadAttention
from keras_adrec.layers.attention.threshold_warmup import advance
from keras_adrec.layers.attention.threshold_warmup import check_warmup_steps
from keras_adrec.layers.attention.threshold_warmup import thresholds_at_step
from tests.layers.attention.references import built_layer
from tests.layers.attention.references import numpy_rule_attention
from tests.layers.attention.references import random_tokens
from tests.test_case import assert_allclose


@pytest.mark.parametrize("rule", ["paper", "relative", "straight_through"])
def test_threshold_warmup(rule):
    thresholds = [0.3, 0.1]
    layer = built_layer(
        mask_thresholds=thresholds, mask_rule=rule, mask_warmup_steps=4
    )
    assert float(layer.mask_step) == 0.0
    x = random_tokens((3, 6, 8), seed=41, scale=2.0)
    weights = [w for w in layer.get_weights() if w.ndim > 0]
    for step in range(6):
        scale = min(1.0, step / 4)
        theta = [t * scale for t in thresholds]
        expected, p, a, _ = numpy_rule_attention(x, x, weights, theta, rule)
        # Inference calls read the schedule and do not advance it.
        _, scores = layer(x, x, return_attention_scores=True)
        assert_allclose(scores, a, atol=1e-5)
        assert float(layer.mask_step) == step
        output = layer(x, x, training=True)
        assert_allclose(output, expected, atol=1e-4, rtol=1e-4)
        assert float(layer.mask_step) == step + 1
    # At step 0 the thresholds are 0: every key is kept.
    fresh = built_layer(
        mask_thresholds=thresholds, mask_rule=rule, mask_warmup_steps=4
    )
    assert_allclose(fresh.mask_diagnostics(x)["mean_kept_keys"], [6.0, 6.0])


def test_warmup_counter_advances_under_xla_fit():
    layer = MaskedMultiHeadAttention(
        2, 4, mask_thresholds=[0.1, 0.01], mask_warmup_steps=10
    )
    inputs = keras.Input((6, 8))
    outputs = keras.layers.GlobalAveragePooling1D()(layer(inputs, inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(outputs))
    model.compile("sgd", "mse", jit_compile=True)
    x = random_tokens((12, 6, 8), seed=42)
    model.fit(x, np.zeros((12, 1)), batch_size=4, epochs=1, verbose=0)
    assert float(layer.mask_step) == 3.0
    assert not layer.mask_step.trainable
    model.predict(x, verbose=0)
    assert float(layer.mask_step) == 3.0


def test_no_step_counter_without_warmup():
    # Weights stay interchangeable with keras MHA when warm-up is off.
    layer = built_layer(mask_rule="relative")
    assert layer.mask_step is None
    assert len(layer.weights) == 8


def test_thresholds_at_step_ramp_linearly():
    theta = np.array([0.4, 0.1])
    constant = thresholds_at_step(theta, None, 0, "float32")
    assert isinstance(constant, np.ndarray) and constant.dtype == "float32"
    step = keras.Variable(0.0, trainable=False)
    for t, factor in [(0, 0.0), (2, 0.5), (4, 1.0), (9, 1.0)]:
        step.assign(float(t))
        ramped = thresholds_at_step(theta, step, 4, "float32")
        assert_allclose(ramped, theta * factor, atol=1e-7)
    advance(step)
    assert float(keras.ops.convert_to_numpy(step)) == 10.0
    advance(None)  # no counter without warm-up: nothing to count


@pytest.mark.parametrize("steps", [-1, 1.5, True, "3"])
def test_invalid_warmup_steps(steps):
    with pytest.raises(ValueError, match="mask_warmup_steps"):
        check_warmup_steps(steps)
