"""A `.keras` file saved before the attention layer was split still loads.

`data/saved_before_split.keras` was saved by keras_adrec at commit 26adb42
(one file for the attention layer, its third positional argument
`mask_thresholds`): a functional model of a `MaskedMultiHeadAttention`
(relative rule, warm-up, dropout), a second one (paper rule,
`value_dim=3`, no biases) and an `AdRecInteraction` (straight-through
rule, warm-up), every `mask_step` at 3. `data/saved_before_split.npz`
holds its inputs `x` and predictions `y`.
"""

import os

import keras
import numpy as np

import keras_adrec  # noqa: F401 - registers the layers for loading
from tests.test_case import assert_allclose

DATA = os.path.join(os.path.dirname(__file__), "data")


def test_model_saved_before_the_split_loads_with_equal_predictions():
    model = keras.saving.load_model(
        os.path.join(DATA, "saved_before_split.keras")
    )
    arrays = np.load(os.path.join(DATA, "saved_before_split.npz"))
    # Predicted on TensorFlow; JAX rounds differently.
    predictions = model.predict(arrays["x"], verbose=0)
    assert_allclose(predictions, arrays["y"], atol=1e-4, rtol=1e-4)
    steps = [w for w in model.weights if w.path.endswith("mask_step")]
    assert len(steps) == 2
    assert all(float(keras.ops.convert_to_numpy(w)) == 3.0 for w in steps)
    rules = [
        layer.mask_rule
        for layer in model.layers
        if isinstance(layer, keras_adrec.layers.MaskedMultiHeadAttention)
    ]
    assert rules == ["relative", "paper"]
