"""Small helpers shared by every part of keras_adrec (the bottom layer)."""

from keras_adrec.utils.allocator import restore_malloc_thresholds
from keras_adrec.utils.allocator import tune_malloc_for_training
from keras_adrec.utils.keras_utils import clone_initializer
from keras_adrec.utils.statistics import mean_std
from keras_adrec.utils.statistics import paired_difference

__all__ = [
    "clone_initializer",
    "mean_std",
    "paired_difference",
    "restore_malloc_thresholds",
    "tune_malloc_for_training",
]
