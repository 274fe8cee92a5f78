"""A recurrent network (LSTM or GRU) over the history events."""

import keras

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers.sequence.sequence_inputs import check_choice
from keras_adrec.layers.sequence.sequence_inputs import check_positive_int
from keras_adrec.layers.sequence.sequence_inputs import parse_sequence_shapes

# cell name -> Keras recurrent layer class
CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


@keras_adrec_export
class RecurrentContext(keras.layers.Layer):
    """The final hidden state of a stacked LSTM or GRU run over the history.

    The history events `z_1..z_{tau-1}` are read in time order by
    `num_layers` stacked recurrent layers starting from zero states; the
    context is the last layer's hidden state after the last history event:
    `c = h_{tau-1}`. The candidate `z_tau` is not read here: the
    sequential model puts it beside the context, `[c, z_tau]`, in front of
    its final MLP, as TBSM's `rnn` model type does.

    When the history length is known at build time the recurrent layers
    are unrolled (`unroll=True`): for TBSM's 20 steps that is a fixed
    graph, and it sidesteps an intermittent TensorFlow failure of the
    `while`-loop LSTM gradient (an `AddN` shape mismatch) seen when `fit`
    builds the model. It also means no cuDNN kernel on GPU.

    Differences from the released TBSM code: there the LSTM is created
    anew, with fresh random weights, in every forward pass and starts from
    random states, so it never trains; here it trains and starts from
    zeros. TBSM also offers no GRU.

    Args:
        cell: str. `"lstm"` or `"gru"` (Keras's `LSTM` or `GRU`, with their
            default activations and, for GRU, `reset_after=True`).
            Defaults to `"lstm"` (TBSM).
        units: int or `None`. Hidden size of every layer; `None` means the
            event width W, as in TBSM. Defaults to `None`.
        num_layers: int. Number of stacked recurrent layers. Defaults to
            `1` (TBSM's `--rnn-num-layers` defaults to 5).
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        candidate: tensor of shape `[B, W]`, the candidate event (unused;
            taken for the common sequential-layer signature).
        history: tensor of shape `[B, T-1, W]`, the earlier events in time
            order.

    Returns:
        The context, a tensor of shape `[B, units]`.

    Example:

    ```python
    rnn = keras_adrec.layers.RecurrentContext(cell="gru")
    context = rnn(np.random.rand(8, 15), np.random.rand(8, 20, 15))
    # context.shape == (8, 15)
    ```

    References:
    - [S. Hochreiter and J. Schmidhuber, 1997. Long Short-Term Memory](
      https://doi.org/10.1162/neco.1997.9.8.1735).
    - [K. Cho et al., 2014. Learning Phrase Representations using RNN
      Encoder-Decoder](https://arxiv.org/abs/1406.1078) (GRU).
    - [T. Ishkhanov et al., 2020. Time-based Sequence Model for
      Personalization and Recommendation Systems](
      https://arxiv.org/abs/2008.11922) (the `rnn` model type).
    - Adnan et al., "Ad-Rec", NeurIPS 2023 ML for Systems, appendix A.2,
      eq. 12 (RM6).
    """

    def __init__(self, cell="lstm", units=None, num_layers=1, **kwargs):
        super().__init__(**kwargs)
        self.cell = check_choice("cell", cell, tuple(CELLS))
        self.units = check_positive_int("units", units, allow_none=True)
        self.num_layers = check_positive_int("num_layers", num_layers)

    def build(self, candidate_shape, history_shape):
        history_length, width = parse_sequence_shapes(
            candidate_shape, history_shape, self.__class__.__name__
        )
        self._units = self.units or width
        layer_class = CELLS[self.cell]
        self.recurrent_layers = []
        shape = (None,) + tuple(history_shape)[1:]
        for index in range(self.num_layers):
            last = index == self.num_layers - 1
            layer = layer_class(
                self._units,
                return_sequences=not last,
                unroll=history_length is not None,
                dtype=self.dtype_policy,
                name=f"{self.cell}_{index}",
            )
            layer.build(shape)
            shape = shape[:-1] + (self._units,)
            self.recurrent_layers.append(layer)

    def call(self, candidate, history):
        x = history
        for layer in self.recurrent_layers:
            x = layer(x)
        return x

    def compute_output_shape(self, candidate_shape, history_shape):
        return (candidate_shape[0], self.units or candidate_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": self.cell,
                "units": self.units,
                "num_layers": self.num_layers,
            }
        )
        return config
