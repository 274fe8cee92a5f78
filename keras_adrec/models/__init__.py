"""Ranking and sequential models and the paper's presets."""

from keras_adrec.models.interactions import INTERACTIONS
from keras_adrec.models.interactions import build_interaction
from keras_adrec.models.interactions import interaction_names
from keras_adrec.models.presets import PRESETS
from keras_adrec.models.presets import get_preset
from keras_adrec.models.presets import preset_names
from keras_adrec.models.ranking_model import RankingModel

__all__ = [
    "INTERACTIONS",
    "PRESETS",
    "RankingModel",
    "build_interaction",
    "get_preset",
    "interaction_names",
    "preset_names",
]
