"""Public layers: the Ad-Rec interaction and the baselines it is compared to."""

from keras_adrec.layers.attention.masked_multi_head_attention import (
    MaskedMultiHeadAttention,
)
from keras_adrec.layers.blocks.adrec_block import AdRecBlock
from keras_adrec.layers.blocks.mlp import MLP
from keras_adrec.layers.embedding.feature_embedding import FeatureEmbedding
from keras_adrec.layers.embedding.multi_hot_embedding import MultiHotEmbedding
from keras_adrec.layers.feature_interaction.adrec_interaction import (
    AdRecInteraction,
)
from keras_adrec.layers.feature_interaction.autoint_interaction import (
    AutoIntInteraction,
)
from keras_adrec.layers.feature_interaction.cross_network import CrossNetwork
from keras_adrec.layers.feature_interaction.dot_interaction import (
    DotInteraction,
)
from keras_adrec.layers.feature_interaction.factorization_machine import (
    FactorizationMachine,
)
from keras_adrec.layers.sequence import MultiHeadAttentionContext
from keras_adrec.layers.sequence import RecurrentContext
from keras_adrec.layers.sequence import TimeSeriesLayer
from keras_adrec.layers.sequence import TransformerContext

__all__ = [
    "AdRecBlock",
    "AdRecInteraction",
    "AutoIntInteraction",
    "CrossNetwork",
    "DotInteraction",
    "FactorizationMachine",
    "FeatureEmbedding",
    "MLP",
    "MaskedMultiHeadAttention",
    "MultiHotEmbedding",
    "MultiHeadAttentionContext",
    "RecurrentContext",
    "TimeSeriesLayer",
    "TransformerContext",
]
