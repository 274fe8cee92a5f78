"""Training helpers: the convergence protocol and exact metrics."""

from keras_adrec.training.convergence_logger import ConvergenceLogger
from keras_adrec.training.metrics import binary_metrics
from keras_adrec.training.metrics import evaluate_model
from keras_adrec.training.metrics import log_loss
from keras_adrec.training.metrics import roc_auc

__all__ = [
    "ConvergenceLogger",
    "binary_metrics",
    "evaluate_model",
    "log_loss",
    "roc_auc",
]
