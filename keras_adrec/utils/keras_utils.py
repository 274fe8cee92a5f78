"""Keras helpers used by several layers."""

import keras


def clone_initializer(initializer):
    """A fresh copy of `initializer`, so two weights never share its state.

    Args:
        initializer: anything `keras.initializers.get` accepts.

    Returns:
        A new `keras.initializers.Initializer` with the same config.
    """
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())
