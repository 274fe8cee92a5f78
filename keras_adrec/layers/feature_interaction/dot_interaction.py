"""DLRM's dot-product feature interaction, on the Ad-Rec input contract."""

import keras
import keras_rs
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.feature_interaction.feature_inputs import (
    parse_feature_shape,
)


@keras_adrec_export
class DotInteraction(keras.layers.Layer):
    """Pairwise dot products of the N+1 feature vectors (DLRM).

    The DLRM baseline of the paper: the dot product of every pair of the
    feature vectors `z_0 = [bottom(x_dense); e_1; ...; e_N]`, i.e. the strict
    lower triangle of `z_0 z_0^T`. The work is done by
    `keras_rs.layers.DotInteraction`; this layer adds the input contract
    shared with `keras_adrec.layers.AdRecInteraction` (a list or one
    `[B, N+1, D]` tensor) and its checks.

    Output order (DLRM's `li, lj` order, row-major over the lower triangle):
    with F = N+1 features, the pair `(i, j)` with `i > j` sits at index
    `i * (i - 1) / 2 + j`, so the output is
    `<z1,z0>, <z2,z0>, <z2,z1>, <z3,z0>, <z3,z1>, <z3,z2>, ...`.
    With `self_interaction=True` the diagonal is kept as well, in the same
    row-major order (`<z0,z0>, <z1,z0>, <z1,z1>, <z2,z0>, ...`).

    The layer returns the interactions only: the ranking model concatenates
    the dense vector in front of them (paper eq. 8; DLRM's
    `cat([x] + [Zflat])`).

    Args:
        self_interaction: bool. Keep the diagonal `<z_i, z_i>` too.
            Defaults to `False` (DLRM).
        skip_gather: bool. Return the whole `F x F` matrix flattened with
            the entries above the kept triangle set to 0, instead of
            gathering the triangle. Defaults to `False`.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: a list of N+1 tensors of shape `[B, D]` (the bottom-MLP
            output first, then the N embeddings), or one tensor of shape
            `[B, N+1, D]`.

    Returns:
        A tensor of shape `[B, K]`: `K = F (F - 1) / 2` by default,
        `F (F + 1) / 2` with `self_interaction`, `F * F` with
        `skip_gather`, where `F = N + 1`.

    Example:

    ```python
    features = [np.random.rand(8, 16) for _ in range(27)]
    interactions = keras_adrec.layers.DotInteraction()(features)  # [8, 351]
    ```

    References:
    - [M. Naumov et al., 2019. Deep Learning Recommendation Model for
      Personalization and Recommendation Systems](
      https://arxiv.org/abs/1906.00091), section 3.
    """

    def __init__(self, self_interaction=False, skip_gather=False, **kwargs):
        super().__init__(**kwargs)
        self.self_interaction = bool(self_interaction)
        self.skip_gather = bool(skip_gather)

    def build(self, input_shape):
        _, self._num_features, _ = parse_feature_shape(
            input_shape, self.__class__.__name__
        )
        self.dot_interaction = keras_rs.layers.DotInteraction(
            self_interaction=self.self_interaction,
            skip_gather=self.skip_gather,
            dtype=self.dtype_policy,
            name="dot_interaction",
        )

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            features = list(inputs)
        else:
            features = ops.unstack(inputs, num=self._num_features, axis=1)
        return self.dot_interaction(features)

    def compute_output_shape(self, input_shape):
        batch_size, num_features, _ = parse_feature_shape(
            input_shape, self.__class__.__name__
        )
        if self.skip_gather:
            size = num_features * num_features
        elif self.self_interaction:
            size = num_features * (num_features + 1) // 2
        else:
            size = num_features * (num_features - 1) // 2
        return (batch_size, size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "self_interaction": self.self_interaction,
                "skip_gather": self.skip_gather,
            }
        )
        return config
