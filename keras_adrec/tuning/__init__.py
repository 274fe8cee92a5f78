"""Hyperparameter search for keras_adrec models with KerasTuner.

- `RankingHyperModel` and `SequentialHyperModel`: HyperModels
  whose search space (`AdRecSearchSpace`) is the paper's
  hyper-parameter study (appendix D.4 and D.6);
- `keras_adrec.tuning.search`: tuner selection (random, bayesian,
  hyperband), resumable searches and their summary.

The whole `adrec tune` job is `keras_adrec.jobs.tune.tune`. Needs the
`tune` extra: `pip install "keras-adrec[tune]"`. See `tuning/README.md`
in the repository for runnable searches and distributed (chief/worker)
search.
"""

from keras_adrec.tuning.hyperparameters import HYPERPARAMETERS
from keras_adrec.tuning.mask_schedule import mask_schedule_spec
from keras_adrec.tuning.mask_schedule import resolve_mask_schedule
from keras_adrec.tuning.ranking_hypermodel import RankingHyperModel
from keras_adrec.tuning.search_space import AdRecSearchSpace
from keras_adrec.tuning.sequential_hypermodel import SequentialHyperModel
from keras_adrec.tuning.validation_auc import ValidationAUC

__all__ = [
    "HYPERPARAMETERS",
    "AdRecSearchSpace",
    "RankingHyperModel",
    "SequentialHyperModel",
    "ValidationAUC",
    "mask_schedule_spec",
    "resolve_mask_schedule",
]
