"""Ranking and sequential models and the paper's presets."""

from keras_adrec.models.head_diagnostics import format_mask_diagnostics
from keras_adrec.models.head_diagnostics import mask_diagnostics
from keras_adrec.models.interactions import INTERACTIONS
from keras_adrec.models.interactions import build_interaction
from keras_adrec.models.interactions import interaction_names
from keras_adrec.models.presets import PRESETS
from keras_adrec.models.presets import Preset
from keras_adrec.models.presets import RankingPreset
from keras_adrec.models.presets import get_preset
from keras_adrec.models.presets import preset_from_dict
from keras_adrec.models.presets import preset_names
from keras_adrec.models.ranking_model import RankingModel
from keras_adrec.models.sequence_layers import SEQUENCE_LAYERS
from keras_adrec.models.sequence_layers import build_sequence_layer
from keras_adrec.models.sequence_layers import sequence_layer_names
from keras_adrec.models.sequential_presets import SequentialPreset
from keras_adrec.models.sequential_ranking_model import SequentialRankingModel

__all__ = [
    "INTERACTIONS",
    "PRESETS",
    "Preset",
    "RankingModel",
    "RankingPreset",
    "SEQUENCE_LAYERS",
    "SequentialPreset",
    "SequentialRankingModel",
    "build_sequence_layer",
    "sequence_layer_names",
    "build_interaction",
    "get_preset",
    "interaction_names",
    "format_mask_diagnostics",
    "mask_diagnostics",
    "preset_from_dict",
    "preset_names",
]
