"""Threshold warm-up: `theta_h(t) = theta_h * min(1, t / warmup_steps)`.

`t` counts the attention layer's training calls in a non-trainable
`mask_step` weight of the layer, so the schedule is saved with the model
and resumes where it stopped. A float32 counter is exact up to `2**24`
steps; past the warm-up only `min(1, t / warmup_steps) = 1` matters.
"""

import numpy as np
from keras import ops


def check_warmup_steps(mask_warmup_steps):
    """Raise a `ValueError` unless `mask_warmup_steps` is an int >= 0."""
    if (
        isinstance(mask_warmup_steps, bool)
        or not isinstance(mask_warmup_steps, (int, np.integer))
        or mask_warmup_steps < 0
    ):
        raise ValueError(
            "`mask_warmup_steps` must be a non-negative integer. "
            f"Received: mask_warmup_steps={mask_warmup_steps!r}"
        )


def add_step_counter(layer):
    """Create `layer`'s `mask_step` weight: a float32 scalar, zero."""
    return layer.add_weight(
        shape=(),
        initializer="zeros",
        trainable=False,
        dtype="float32",
        name="mask_step",
    )


def thresholds_at_step(thresholds, step, warmup_steps, dtype):
    """The thresholds in use at the counter's current step.

    Args:
        thresholds: numpy array of the full thresholds.
        step: the `mask_step` variable, or `None` without warm-up.
        warmup_steps: int > 0 when `step` is given.
        dtype: dtype of the result.

    Returns:
        `thresholds` as a numpy array of `dtype` without warm-up (a
        constant the keep rules may fold), else a tensor.
    """
    thresholds = np.asarray(thresholds).astype(dtype)
    if step is None:
        return thresholds
    ramp = ops.minimum(ops.cast(step, dtype) / float(warmup_steps), 1.0)
    return ops.convert_to_tensor(thresholds) * ramp


def advance(step):
    """Count one training call: the step that used `theta(t)` is `t`."""
    if step is not None:
        step.assign_add(1.0)
