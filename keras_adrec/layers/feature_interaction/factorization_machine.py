"""DeepFM's factorization machine, on the Ad-Rec input contract."""

import keras
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.feature_interaction.feature_inputs import (
    parse_feature_shape,
)
from keras_adrec.layers.feature_interaction.feature_inputs import stack_features
from keras_adrec.utils.keras_utils import clone_initializer


@keras_adrec_export
class FactorizationMachine(keras.layers.Layer):
    """The FM component of DeepFM, placed in the DLRM skeleton.

    With the F = N+1 feature vectors `v_1 .. v_F` of size D (the bottom-MLP
    output and the N embeddings) the layer computes, per sample:

    - first-order term (`include_first_order`): `<w, concat(v_1..v_F)> + b`,
      shape `[B, 1]`;
    - second-order term (always):
      `sum_{i<j} <v_i, v_j> = 0.5 * sum_d [(sum_i v_id)^2 - sum_i v_id^2]`,
      shape `[B, 1]`;
    - the embeddings themselves (`include_embeddings`):
      `flatten(v_1..v_F)`, shape `[B, F * D]`;

    and returns their concatenation in this order.

    Mapping to DeepFM (Guo et al. 2017, eq. 1-4): DeepFM's prediction is
    `sigmoid(y_FM + y_DNN)`, with `y_FM = <w, x> + sum_{i<j} <V_i, V_j>
    x_i x_j` and `y_DNN` an MLP over the same embeddings (shared, not
    pre-trained). In the DLRM skeleton the top MLP reads
    `concat(dense vector, this output)`, so it receives the FM terms and,
    with `include_embeddings=True`, the flattened embeddings: it plays the
    deep part over the shared embeddings and combines it with the FM terms
    (DeepFM adds `y_FM` and `y_DNN` with weight 1 before the sigmoid; here
    the combination is learned by the top MLP).
    Differences: DeepFM's first-order weights `w` are per category value
    (a width-1 embedding of the raw ids); here the layer only sees the
    embeddings, so the first-order term is a learned linear function of
    them. The dense features take part through the bottom-MLP output,
    treated as one more field vector. Since the ranking model already
    prepends the dense vector, with `include_embeddings=True` it appears
    twice in the top-MLP input (harmless; set `include_embeddings=False`
    for the FM terms only).

    Args:
        include_first_order: bool. Output the first-order term. Defaults to
            `True`.
        include_embeddings: bool. Output the flattened feature vectors too.
            Defaults to `True`.
        kernel_initializer: str or `keras.initializers.Initializer`.
            Initializer of the first-order weights. Defaults to
            `"glorot_uniform"`.
        bias_initializer: str or `keras.initializers.Initializer`.
            Initializer of the first-order bias. Defaults to `"zeros"`.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: a list of N+1 tensors of shape `[B, D]` (the bottom-MLP
            output first, then the N embeddings), or one tensor of shape
            `[B, N+1, D]`.

    Returns:
        A tensor of shape `[B, K]` with
        `K = include_first_order + 1 + include_embeddings * (N+1) * D`.

    Example:

    ```python
    features = [np.random.rand(8, 16) for _ in range(27)]
    fm = keras_adrec.layers.FactorizationMachine()
    outputs = fm(features)  # [8, 1 + 1 + 27 * 16]
    ```

    References:
    - [H. Guo et al., 2017. DeepFM: A Factorization-Machine based Neural
      Network for CTR Prediction](https://arxiv.org/abs/1703.04247),
      eq. 1-4.
    - [S. Rendle, 2010. Factorization Machines](
      https://doi.org/10.1109/ICDM.2010.127), lemma 3.1 (the O(kn) form).
    """

    def __init__(
        self,
        include_first_order=True,
        include_embeddings=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.include_first_order = bool(include_first_order)
        self.include_embeddings = bool(include_embeddings)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        _, num_features, feature_dim = parse_feature_shape(
            input_shape, self.__class__.__name__
        )
        self._flat_dim = num_features * feature_dim
        if self.include_first_order:
            self.first_order = keras.layers.Dense(
                1,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name="first_order",
            )
            self.first_order.build((None, self._flat_dim))

    def call(self, inputs):
        features = stack_features(inputs)
        flat = ops.reshape(features, (-1, self._flat_dim))
        sum_of_vectors = ops.sum(features, axis=1)
        sum_of_squares = ops.sum(ops.square(features), axis=1)
        second_order = 0.5 * ops.sum(
            ops.square(sum_of_vectors) - sum_of_squares,
            axis=-1,
            keepdims=True,
        )
        outputs = [second_order]
        if self.include_first_order:
            outputs.insert(0, self.first_order(flat))
        if self.include_embeddings:
            outputs.append(flat)
        return ops.concatenate(outputs, axis=-1)

    def compute_output_shape(self, input_shape):
        batch_size, num_features, feature_dim = parse_feature_shape(
            input_shape, self.__class__.__name__
        )
        size = 1 + int(self.include_first_order)
        if self.include_embeddings:
            size += num_features * feature_dim
        return (batch_size, size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "include_first_order": self.include_first_order,
                "include_embeddings": self.include_embeddings,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
