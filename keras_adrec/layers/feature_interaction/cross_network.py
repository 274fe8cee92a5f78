"""DCN-v2's cross network, on the Ad-Rec input contract."""

import numbers

import keras
import keras_rs
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.feature_interaction.feature_inputs import (
    parse_feature_shape,
)
from keras_adrec.layers.feature_interaction.feature_inputs import stack_features


@keras_adrec_export
class CrossNetwork(keras.layers.Layer):
    """A stack of DCN-v2 cross layers over the concatenated features.

    With `x_0 = concat(z_0, z_1, ..., z_N)` of size `(N+1) * D` (the
    bottom-MLP output and the N embeddings), each of the `num_layers` cross
    layers computes

    `x_{l+1} = x_0 * (W_l x_l + b_l) + x_l`

    (`*` elementwise). `W_l` is a full `(N+1)D x (N+1)D` matrix when
    `projection_dim` is `None`, or the low-rank product `U_l V_l` of rank
    `projection_dim` (DCN-v2 eq. 1 and 2). Each cross layer is a
    `keras_rs.layers.FeatureCross`; with `diag_scale = s > 0` it uses
    `W_l + s I`, and with a `pre_activation` `f` it computes
    `x_0 * (f(W_l x_l + b_l) + s x_l) + x_l` (keras-rs and TFRS options,
    off by default).

    This is the "stacked" DCN-v2 variant without the deep network: in the
    DLRM skeleton the top MLP after the interaction plays the deep part,
    and the ranking model puts the dense vector in front of `x_L`
    (paper eq. 8).

    Args:
        num_layers: int. Number of cross layers L. Defaults to `2`.
        projection_dim: int or `None`. Rank r of the low-rank `W = U V`;
            `None` for full-rank matrices. Defaults to `None`.
        diag_scale: non-negative float. Adds `diag_scale * I` to each `W`.
            Defaults to `0.0`.
        use_bias: bool. Whether each cross layer has the bias `b_l`.
            Defaults to `True`.
        pre_activation: str, activation function or `None`. Applied to
            `W_l x_l + b_l` before the product with `x_0`, to bound the
            scale of each layer's output. Defaults to `None` (linear).
        kernel_initializer: str or `keras.initializers.Initializer`.
            Initializer of the `W` (or `U`, `V`) matrices. Defaults to
            `"glorot_uniform"`.
        bias_initializer: str or `keras.initializers.Initializer`.
            Initializer of the biases. Defaults to `"zeros"`.
        kernel_regularizer: str, `keras.regularizers.Regularizer` or
            `None`. Regularizer of the matrices. Defaults to `None`.
        bias_regularizer: str, `keras.regularizers.Regularizer` or `None`.
            Regularizer of the biases. Defaults to `None`.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: a list of N+1 tensors of shape `[B, D]` (the bottom-MLP
            output first, then the N embeddings), or one tensor of shape
            `[B, N+1, D]`.

    Returns:
        `x_L`, a tensor of shape `[B, (N+1) * D]`.

    Example:

    ```python
    features = [np.random.rand(8, 16) for _ in range(27)]
    cross = keras_adrec.layers.CrossNetwork(num_layers=2, projection_dim=64)
    outputs = cross(features)  # [8, 432]
    ```

    References:
    - [R. Wang et al., 2021. DCN V2: Improved Deep & Cross Network and
      Practical Lessons for Web-scale Learning to Rank Systems](
      https://arxiv.org/abs/2008.13535), eq. 1 and 2.
    """

    def __init__(
        self,
        num_layers=2,
        projection_dim=None,
        diag_scale=0.0,
        use_bias=True,
        pre_activation=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            isinstance(num_layers, bool)
            or not isinstance(num_layers, numbers.Integral)
            or num_layers < 1
        ):
            raise ValueError(
                "`num_layers` must be a positive int. "
                f"Received: num_layers={num_layers}"
            )
        if projection_dim is not None and (
            isinstance(projection_dim, bool)
            or not isinstance(projection_dim, numbers.Integral)
            or projection_dim < 1
        ):
            raise ValueError(
                "`projection_dim` must be `None` or a positive int. "
                f"Received: projection_dim={projection_dim}"
            )
        if diag_scale is None or diag_scale < 0:
            raise ValueError(
                "`diag_scale` must be a non-negative float. "
                f"Received: diag_scale={diag_scale}"
            )
        self.num_layers = int(num_layers)
        self.projection_dim = (
            None if projection_dim is None else int(projection_dim)
        )
        self.diag_scale = float(diag_scale)
        self.use_bias = bool(use_bias)
        self.pre_activation = keras.activations.get(pre_activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

    def build(self, input_shape):
        _, num_features, feature_dim = parse_feature_shape(
            input_shape, self.__class__.__name__
        )
        self._flat_dim = num_features * feature_dim
        self.cross_layers = []
        for index in range(self.num_layers):
            cross = keras_rs.layers.FeatureCross(
                projection_dim=self.projection_dim,
                diag_scale=self.diag_scale,
                use_bias=self.use_bias,
                pre_activation=self.pre_activation,
                kernel_initializer=self.kernel_initializer,
                bias_initializer=self.bias_initializer,
                kernel_regularizer=self.kernel_regularizer,
                bias_regularizer=self.bias_regularizer,
                dtype=self.dtype_policy,
                name=f"cross_{index}",
            )
            # FeatureCross.build creates its Dense sub-layers without
            # building them; a symbolic call creates their weights now, so
            # that `.keras` loading finds them before the first real call.
            symbolic = keras.KerasTensor((None, self._flat_dim))
            cross(symbolic, symbolic)
            self.cross_layers.append(cross)

    def call(self, inputs):
        x0 = ops.reshape(stack_features(inputs), (-1, self._flat_dim))
        x = x0
        for cross in self.cross_layers:
            x = cross(x0, x)
        return x

    def compute_output_shape(self, input_shape):
        batch_size, num_features, feature_dim = parse_feature_shape(
            input_shape, self.__class__.__name__
        )
        return (batch_size, num_features * feature_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "projection_dim": self.projection_dim,
                "diag_scale": self.diag_scale,
                "use_bias": self.use_bias,
                "pre_activation": keras.activations.serialize(
                    self.pre_activation
                ),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "bias_regularizer": keras.regularizers.serialize(
                    self.bias_regularizer
                ),
            }
        )
        return config
