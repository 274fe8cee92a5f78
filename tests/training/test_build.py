"""The optimizer a preset asks for, with and without the warm-up."""

import keras
import numpy as np
import pytest

from keras_adrec.models import get_preset
from keras_adrec.training import optimizer_for
from keras_adrec.training.build import warmup_learning_rate


def _adagrad_reference(gradient, learning_rates, epsilon=1e-10):
    """Keras Adagrad in numpy: acc += g^2; w -= lr g / sqrt(acc + eps)."""
    weight = np.zeros_like(gradient, dtype="float64")
    accumulator = np.zeros_like(gradient, dtype="float64")
    trajectory = []
    for lr in learning_rates:
        accumulator += gradient.astype("float64") ** 2
        weight -= lr * gradient / np.sqrt(accumulator + epsilon)
        trajectory.append(weight.copy())
    return np.array(trajectory)


def test_warmup_ramps_linearly_then_holds():
    schedule = warmup_learning_rate(0.05, 4)
    rates = [float(schedule(step)) for step in range(7)]
    np.testing.assert_allclose(
        rates, [0.0, 0.0125, 0.025, 0.0375, 0.05, 0.05, 0.05], rtol=1e-6
    )
    assert warmup_learning_rate(0.05, 0) == 0.05
    with pytest.raises(ValueError, match="learning_rate_warmup_steps"):
        warmup_learning_rate(0.05, -1)


def test_sequential_optimizer_with_warmup_matches_numpy_adagrad():
    fields = get_preset("rm4", learning_rate_warmup_steps=4)
    optimizer = optimizer_for(fields)
    variable = keras.Variable(np.zeros(3, "float32"))
    gradient = np.array([1e-4, -1e-3, 2e-2], "float32")
    trajectory = []
    for _ in range(6):
        optimizer.apply_gradients(
            [(keras.ops.convert_to_tensor(gradient), variable)]
        )
        trajectory.append(variable.numpy().copy())
    expected = _adagrad_reference(
        gradient, [0.0, 0.0125, 0.025, 0.0375, 0.05, 0.05]
    )
    np.testing.assert_allclose(trajectory, expected, rtol=1e-4, atol=1e-9)
    # Without the warm-up the first step is a full-size sign step.
    plain = optimizer_for(get_preset("rm4", learning_rate_warmup_steps=0))
    first = keras.Variable(np.zeros(3, "float32"))
    plain.apply_gradients([(keras.ops.convert_to_tensor(gradient), first)])
    np.testing.assert_allclose(
        first.numpy(), -0.05 * np.sign(gradient), rtol=6e-3
    )


def test_warmup_survives_optimizer_serialization():
    optimizer = optimizer_for(get_preset("rm4", learning_rate_warmup_steps=7))
    restored = keras.optimizers.deserialize(
        keras.optimizers.serialize(optimizer)
    )
    config = restored.get_config()["learning_rate"]
    assert config["class_name"] == "CosineDecay"
    assert config["config"]["warmup_steps"] == 7
    assert config["config"]["warmup_target"] == pytest.approx(0.05)
    # The rate in effect before the first step (iterations = 0) is 0.
    assert float(restored.learning_rate) == 0.0
