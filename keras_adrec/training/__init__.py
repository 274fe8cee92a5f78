"""Training helpers: the convergence protocol and exact metrics."""

from keras_adrec.training.convergence_logger import ConvergenceLogger
from keras_adrec.training.custom_loop import train_custom_loop
from keras_adrec.training.distribution import make_strategy
from keras_adrec.training.distribution import scaled_learning_rate
from keras_adrec.training.metrics import binary_metrics
from keras_adrec.training.metrics import evaluate_model
from keras_adrec.training.metrics import log_loss
from keras_adrec.training.metrics import roc_auc
from keras_adrec.training.nan_guard import NanGuard
from keras_adrec.training.resumable_convergence_logger import (
    ResumableConvergenceLogger,
)
from keras_adrec.training.training_checkpoint import TrainingCheckpoint

__all__ = [
    "ConvergenceLogger",
    "NanGuard",
    "ResumableConvergenceLogger",
    "TrainingCheckpoint",
    "make_strategy",
    "scaled_learning_rate",
    "train_custom_loop",
    "binary_metrics",
    "evaluate_model",
    "log_loss",
    "roc_auc",
]
