"""TBSM's time-series layer (TSL): attention of the candidate over history."""

import keras
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.blocks.mlp import MLP
from keras_adrec.layers.sequence.sequence_inputs import check_choice
from keras_adrec.layers.sequence.sequence_inputs import check_positive_int
from keras_adrec.layers.sequence.sequence_inputs import parse_sequence_shapes
from keras_adrec.utils.keras_utils import clone_initializer

INNER_PRODUCTS = ("dot", "ind", "def")
MECHANISMS = ("mlp", "mul", "softmax")

# Below this squared norm a vector is projected to 0, as torch's
# `F.normalize(eps=1e-12)` does; the clamp also keeps the gradient finite.
_MIN_SQUARED_NORM = 1e-24


@keras_adrec_export
class TimeSeriesLayer(keras.layers.Layer):
    """TBSM's time-series layer: the candidate attends over the history.

    For the candidate event vector `w = z_tau` and the history
    `H = [z_1; ...; z_{tau-1}]`, each TSL head computes

    1. the spherical projection `w <- w / |w|`, `h_t <- h_t / |h_t|`
       (`projection=True`, TBSM's `--tsl-proj`);
    2. the coefficients `a_t = <h_t, w>_M` under an inner product chosen
       by `inner` (TBSM's `--tsl-inner`): `"dot"`, `M = I`; `"ind"`
       (indefinite), `a_t = h_t^T A w`; `"def"` (positive semi-definite),
       `a_t = h_t^T A^T A w`, with a learned `W x W` matrix `A` per head;
    3. attention weights `y` from the coefficients by `mechanism`
       (TBSM's `--tsl-mechanism`): `"mlp"`, `y = MLP(a)`, an MLP from
       `T-1` to `T-1` values with hidden sizes `attention_units`, ReLU
       inside and a sigmoid at the end (TBSM's default); `"mul"`,
       `y = a`; `"softmax"`, `y = softmax(a)` (standard attention, not in
       TBSM);
    4. the context `c = sum_t y_t h_t` (over the projected history).

    Each head has its own `A` and its own attention MLP (TBSM's
    `--tsl-num-heads`). The heads' contexts are concatenated. TBSM instead
    gives each head its own final MLP and combines the heads' click
    probabilities with one more MLP; here one final MLP of the sequential
    model reads all contexts. TBSM's k-sequences option (`--tsl-seq`,
    heads over shorter suffixes of the history) is not implemented.

    The projected candidate is used inside the layer only: the sequential
    model's final MLP reads the candidate as the event model gave it
    (TBSM feeds it the projected one).

    Args:
        num_heads: int. Number of TSL heads. Defaults to `1` (TBSM's
            default and the Taobao benchmark setting).
        inner: str. `"dot"`, `"ind"` or `"def"`, the inner product of
            step 2. Defaults to `"def"`.
        mechanism: str. `"mlp"`, `"mul"` or `"softmax"`, step 3. Defaults
            to `"mlp"`.
        attention_units: list of int. Hidden sizes of the attention MLP
            (`mechanism="mlp"` only; its input and output sizes are the
            history length). Defaults to `[15, 15]` (TBSM's `--tsl-mlp`
            for Taobao).
        projection: bool. Apply the spherical projection of step 1.
            Defaults to `True`.
        kernel_initializer: str or `keras.initializers.Initializer`. The
            initializer of `A` and of the attention MLP's kernels.
            Defaults to `"glorot_normal"` (TBSM draws `A` from a normal of
            standard deviation `sqrt(2 / (W + W))`).
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        candidate: tensor of shape `[B, W]`, the candidate event `z_tau`.
        history: tensor of shape `[B, T-1, W]`, the earlier events. With
            `mechanism="mlp"` the length `T-1` must be known when the
            layer is built.

    Returns:
        The context, a tensor of shape `[B, num_heads * W]`.

    Example:

    ```python
    tsl = keras_adrec.layers.TimeSeriesLayer()
    context = tsl(np.random.rand(8, 15), np.random.rand(8, 20, 15))
    # context.shape == (8, 15)
    ```

    References:
    - [T. Ishkhanov et al., 2020. Time-based Sequence Model for
      Personalization and Recommendation Systems](
      https://arxiv.org/abs/2008.11922), section 3 (TSL); the released
      code's `TSL_Net` (facebookresearch/tbsm).
    - Adnan et al., "Ad-Rec", NeurIPS 2023 ML for Systems, appendix A.2,
      eq. 12 (RM4).
    """

    def __init__(
        self,
        num_heads=1,
        inner="def",
        mechanism="mlp",
        attention_units=(15, 15),
        projection=True,
        kernel_initializer="glorot_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.inner = check_choice("inner", inner, INNER_PRODUCTS)
        self.mechanism = check_choice("mechanism", mechanism, MECHANISMS)
        if isinstance(attention_units, (int, str)) or any(
            isinstance(unit, bool) or not isinstance(unit, int) or unit < 1
            for unit in attention_units
        ):
            raise ValueError(
                "`attention_units` must be a list of positive ints. "
                f"Received: attention_units={attention_units}"
            )
        self.attention_units = [int(unit) for unit in attention_units]
        self.projection = bool(projection)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, candidate_shape, history_shape):
        history_length, width = parse_sequence_shapes(
            candidate_shape, history_shape, self.__class__.__name__
        )
        if self.mechanism == "mlp" and history_length is None:
            raise ValueError(
                "`TimeSeriesLayer` with `mechanism='mlp'` needs the history "
                "length to be known: its attention MLP maps T-1 "
                "coefficients to T-1 weights. Received history shape "
                f"{tuple(history_shape)}."
            )
        self._width = width
        self.inner_kernels = []
        if self.inner != "dot":
            for head in range(self.num_heads):
                self.inner_kernels.append(
                    self.add_weight(
                        name=f"inner_kernel_{head}",
                        shape=(width, width),
                        initializer=clone_initializer(self.kernel_initializer),
                    )
                )
        self.attention_mlps = []
        if self.mechanism == "mlp":
            for head in range(self.num_heads):
                mlp = MLP(
                    self.attention_units + [history_length],
                    activation="relu",
                    final_activation="sigmoid",
                    kernel_initializer=clone_initializer(
                        self.kernel_initializer
                    ),
                    dtype=self.dtype_policy,
                    name=f"attention_mlp_{head}",
                )
                mlp.build((None, history_length))
                self.attention_mlps.append(mlp)

    def _project(self, x):
        squared = ops.sum(ops.square(x), axis=-1, keepdims=True)
        return x * ops.rsqrt(ops.maximum(squared, _MIN_SQUARED_NORM))

    def _inner_query(self, candidate, head):
        """The vector `M w` whose dot with `h_t` gives `<h_t, w>_M`."""
        if self.inner == "dot":
            return candidate
        kernel = self.inner_kernels[head]
        projected = ops.matmul(candidate, ops.transpose(kernel))  # (A w)^T
        if self.inner == "ind":
            return projected
        return ops.matmul(projected, kernel)  # (A^T A w)^T

    def _weights(self, coefficients, head):
        if self.mechanism == "mlp":
            return self.attention_mlps[head](coefficients)
        if self.mechanism == "softmax":
            return ops.softmax(coefficients, axis=-1)
        return coefficients

    def call(self, candidate, history):
        candidate = ops.cast(candidate, self.compute_dtype)
        history = ops.cast(history, self.compute_dtype)
        if self.projection:
            candidate = self._project(candidate)
            history = self._project(history)
        contexts = []
        for head in range(self.num_heads):
            query = self._inner_query(candidate, head)
            coefficients = ops.einsum("btw,bw->bt", history, query)
            weights = self._weights(coefficients, head)
            contexts.append(ops.einsum("bt,btw->bw", weights, history))
        if len(contexts) == 1:
            return contexts[0]
        return ops.concatenate(contexts, axis=-1)

    def compute_output_shape(self, candidate_shape, history_shape):
        return (candidate_shape[0], self.num_heads * candidate_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "inner": self.inner,
                "mechanism": self.mechanism,
                "attention_units": list(self.attention_units),
                "projection": self.projection,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
