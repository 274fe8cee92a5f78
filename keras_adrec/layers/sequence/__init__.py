"""Sequential layers of the TBSM skeleton: candidate and history to context.

Every layer here is called as `layer(candidate, history)` with the
candidate event vector `z_tau` of shape `[B, W]` and the history
`Z = [z_1; ...; z_{tau-1}]` of shape `[B, T-1, W]`, and returns a context
vector `c` of shape `[B, C]` (paper appendix A.2, eq. 12).
"""

from keras_adrec.layers.sequence.multi_head_attention_context import (
    MultiHeadAttentionContext,
)
from keras_adrec.layers.sequence.recurrent_context import RecurrentContext
from keras_adrec.layers.sequence.time_series_layer import TimeSeriesLayer
from keras_adrec.layers.sequence.transformer_context import TransformerContext

__all__ = [
    "MultiHeadAttentionContext",
    "RecurrentContext",
    "TimeSeriesLayer",
    "TransformerContext",
]
