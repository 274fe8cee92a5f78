"""A stack of Dense layers: the bottom and top MLPs of the DLRM skeleton."""

import numbers

import keras

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.utils.keras_utils import clone_initializer


@keras_adrec_export
class MLP(keras.layers.Layer):
    """A multi-layer perceptron: Dense layers applied one after the other.

    Every layer but the last applies `activation`, then dropout when
    `dropout > 0`; the last layer applies `final_activation` and no dropout.

    In the DLRM skeleton the bottom MLP maps the dense features to the
    embedding size D (RM1: 13-512-256-64-16) and the top MLP maps the
    interaction output to the click probability (RM1: 512-256-1).
    The authors' code (DLRM's `create_mlp`) puts ReLU after every bottom
    layer, the last one included, and a sigmoid after the last top layer.
    So build the bottom MLP with `final_activation="relu"` and the top MLP
    with `final_activation="sigmoid"` (or `None` for logits with a
    `from_logits` loss). The default `None` leaves the last layer linear.

    Args:
        units: list of int. The width of each Dense layer, in order. The
            input width comes from the input and is not listed: RM1's
            bottom MLP 13-512-256-64-16 is `units=[512, 256, 64, 16]`.
        activation: str or callable. Activation of every layer but the
            last. Defaults to `"relu"`.
        final_activation: str, callable or `None`. Activation of the last
            layer; `None` means linear. Defaults to `None`.
        dropout: float in `[0, 1)`. Dropout rate after every hidden layer's
            activation. No dropout layer is created when it is 0.
            Defaults to `0.0`.
        kernel_initializer: str or `keras.initializers.Initializer`.
            Initializer of every kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: str or `keras.initializers.Initializer`.
            Initializer of every bias. Defaults to `"zeros"`.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor of shape `[..., input_dim]`.
        training: bool. Whether dropout is active. Defaults to `None`
            (Keras's learning phase).

    Returns:
        A tensor of shape `[..., units[-1]]`.

    Example:

    ```python
    bottom = keras_adrec.layers.MLP([512, 256, 64, 16], final_activation="relu")
    top = keras_adrec.layers.MLP([512, 256, 1], final_activation="sigmoid")
    dense_vector = bottom(np.random.rand(8, 13))  # [8, 16]
    ```

    References:
    - [M. Naumov et al., 2019. Deep Learning Recommendation Model for
      Personalization and Recommendation Systems](
      https://arxiv.org/abs/1906.00091)
    """

    def __init__(
        self,
        units,
        activation="relu",
        final_activation=None,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            not isinstance(units, (list, tuple))
            or not units
            or any(
                isinstance(u, bool) or not isinstance(u, numbers.Integral)
                for u in units
            )
            or min(units) < 1
        ):
            raise ValueError(
                "`units` must be a non-empty list of positive ints. "
                f"Received: units={units}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        self.units = [int(u) for u in units]
        self.activation = keras.activations.get(activation)
        self.final_activation = keras.activations.get(final_activation)
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        self.dense_layers = []
        self.dropout_layers = []
        shape = tuple(input_shape)
        last = len(self.units) - 1
        for index, width in enumerate(self.units):
            dense = keras.layers.Dense(
                width,
                activation=(
                    self.final_activation if index == last else self.activation
                ),
                kernel_initializer=clone_initializer(self.kernel_initializer),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name=f"dense_{index}",
            )
            dense.build(shape)
            shape = shape[:-1] + (width,)
            self.dense_layers.append(dense)
            if index < last and self.dropout > 0:
                self.dropout_layers.append(
                    keras.layers.Dropout(
                        self.dropout,
                        dtype=self.dtype_policy,
                        name=f"dropout_{index}",
                    )
                )

    def call(self, inputs, training=None):
        x = inputs
        for index, dense in enumerate(self.dense_layers):
            x = dense(x)
            if index < len(self.dropout_layers):
                x = self.dropout_layers[index](x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.units[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": list(self.units),
                "activation": keras.activations.serialize(self.activation),
                "final_activation": keras.activations.serialize(
                    self.final_activation
                ),
                "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
