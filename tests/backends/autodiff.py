"""Gradients by the autodiff of whichever Keras backend is running."""

import keras
import numpy as np


def output_and_gradients(loss_fn, arrays, jit=True):
    """Differentiate `loss_fn` with the running backend's own autodiff.

    `tf.GradientTape` on TensorFlow, `jax.grad` (compiled with `jax.jit`
    unless `jit=False`) on JAX.

    Args:
        loss_fn: callable taking a list of tensors (one per entry of
            `arrays`) and returning `(scalar_loss, output)`.
        arrays: list of float numpy arrays to differentiate with respect to.
        jit: bool. Compile the JAX gradient into one program. Defaults to
            `True`.

    Returns:
        `(output, gradients)` as numpy: `output` from `loss_fn` and one
        gradient per array (zeros where TensorFlow reports none).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.convert_to_tensor(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            loss, output = loss_fn(tensors)
        grads = tape.gradient(loss, tensors)
        grads = [
            np.zeros_like(a) if g is None else np.asarray(g)
            for a, g in zip(arrays, grads)
        ]
        return np.asarray(output), grads
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        step = jax.grad(loss_fn, has_aux=True)
        if jit:
            step = jax.jit(step)
        grads, output = step([jnp.asarray(a) for a in arrays])
        return np.asarray(output), [np.asarray(g) for g in grads]
    raise ValueError(f"No gradient helper for backend {backend!r}.")
