"""LayerNorm over the last axis with its gradient in closed form.

`layer_norm(layer, inputs)` computes what a
`keras.layers.LayerNormalization(axis=-1)` layer computes, with the
layer's own `gamma` and `beta`. On the TensorFlow backend the backward
pass is the textbook closed form,

    dx = rstd (g - mean(g) - xhat mean(g xhat)),  g = dy gamma,
    dgamma = sum(dy xhat),  dbeta = sum(dy),

applied directly (`tf.custom_gradient`): automatic differentiation of
`keras.ops.layer_normalization` runs the backward pass of every op of
the forward (the moments, the broadcast scale and shift), about twice as
many passes over the tokens. Other backends call the layer.
"""

import keras

from keras_adrec.layers.attention.threshold_softmax import at_least_float32


def applies(layer):
    """Whether `layer_norm` computes `layer`'s function exactly."""
    return (
        keras.backend.backend() == "tensorflow"
        and isinstance(layer, keras.layers.LayerNormalization)
        and tuple(layer.axis) in ((-1,), (len(layer.gamma.shape) - 1,))
        and layer.center
        and layer.scale
        and not layer.rms_scaling
    )


def layer_norm(layer, inputs):
    """`layer(inputs)` for a LayerNormalization over the last axis.

    Computes in float32 at least (as Keras does) and returns the layer's
    compute dtype.

    Args:
        layer: a built `keras.layers.LayerNormalization`.
        inputs: tensor whose last axis is normalised.

    Returns:
        A tensor of the shape of `inputs`.
    """
    if not applies(layer) or len(inputs.shape) < 2:
        return layer(inputs)
    import tensorflow as tf

    x = at_least_float32(tf.convert_to_tensor(inputs))
    gamma = tf.cast(layer.gamma.value, x.dtype)
    beta = tf.cast(layer.beta.value, x.dtype)
    epsilon = layer.epsilon
    reduce_axes = list(range(len(inputs.shape) - 1))

    @tf.custom_gradient
    def normalised(x, gamma, beta):
        mean = tf.reduce_mean(x, -1, keepdims=True)
        centred = x - mean
        variance = tf.reduce_mean(tf.square(centred), -1, keepdims=True)
        rstd = tf.math.rsqrt(variance + epsilon)
        xhat = centred * rstd

        def grad(upstream):
            upstream = tf.cast(upstream, x.dtype)
            g = upstream * gamma
            dx = rstd * (
                g
                - tf.reduce_mean(g, -1, keepdims=True)
                - xhat * tf.reduce_mean(g * xhat, -1, keepdims=True)
            )
            return (
                dx,
                tf.reduce_sum(upstream * xhat, reduce_axes),
                tf.reduce_sum(upstream, reduce_axes),
            )

        return xhat * gamma + beta, grad

    # The layer's name scope: profiles file these ops under the layer.
    with tf.name_scope(layer.name):
        outputs = normalised(x, gamma, beta)
    return tf.cast(outputs, layer.compute_dtype)
