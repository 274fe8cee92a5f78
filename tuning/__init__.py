"""Hyperparameter search for keras_adrec models with KerasTuner.

- `tuning.RankingHyperModel` and `tuning.SequentialHyperModel`: HyperModels
  whose search space (`tuning.AdRecSearchSpace`) is the paper's
  hyper-parameter study (appendix D.4 and D.6);
- `tuning.search`: tuner selection (random, bayesian, hyperband), a
  resumable search job, its summary and the export of the best model;
- `tuning.cli`: the `adrec tune` command.

See `tuning/README.md`, also for distributed (chief/worker) search.
"""

from tuning.ranking_hypermodel import RankingHyperModel
from tuning.search_space import HYPERPARAMETERS
from tuning.search_space import AdRecSearchSpace
from tuning.search_space import mask_schedule_spec
from tuning.search_space import resolve_mask_schedule
from tuning.sequential_hypermodel import SequentialHyperModel
from tuning.validation_auc import ValidationAUC

__all__ = [
    "HYPERPARAMETERS",
    "AdRecSearchSpace",
    "RankingHyperModel",
    "SequentialHyperModel",
    "ValidationAUC",
    "mask_schedule_spec",
    "resolve_mask_schedule",
]
