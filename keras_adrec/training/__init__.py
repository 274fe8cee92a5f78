"""Training primitives: build and compile, metrics, callbacks, loops,
checkpoints, distribution and the model directory layout."""

from keras_adrec.training.build import MIXED_PRECISION_POLICIES
from keras_adrec.training.build import build_ranking_model
from keras_adrec.training.build import build_sequential_model
from keras_adrec.training.build import compile_model
from keras_adrec.training.build import dtype_policy
from keras_adrec.training.build import make_optimizer
from keras_adrec.training.build import optimizer_for
from keras_adrec.training.build import resolve_fields
from keras_adrec.training.build import streamed_epochs
from keras_adrec.training.convergence_logger import ConvergenceLogger
from keras_adrec.training.custom_loop import train_custom_loop
from keras_adrec.training.distribution import make_strategy
from keras_adrec.training.distribution import scaled_learning_rate
from keras_adrec.training.metrics import binary_metrics
from keras_adrec.training.metrics import calibration
from keras_adrec.training.metrics import evaluate_model
from keras_adrec.training.metrics import group_auc
from keras_adrec.training.metrics import log_loss
from keras_adrec.training.metrics import roc_auc
from keras_adrec.training.model_directory import ModelDirectory
from keras_adrec.training.nan_guard import NanGuard
from keras_adrec.training.resumable_convergence_logger import (
    ResumableConvergenceLogger,
)
from keras_adrec.training.training_checkpoint import TrainingCheckpoint

__all__ = [
    "MIXED_PRECISION_POLICIES",
    "ModelDirectory",
    "build_ranking_model",
    "build_sequential_model",
    "compile_model",
    "dtype_policy",
    "make_optimizer",
    "optimizer_for",
    "resolve_fields",
    "streamed_epochs",
    "ConvergenceLogger",
    "NanGuard",
    "ResumableConvergenceLogger",
    "TrainingCheckpoint",
    "make_strategy",
    "scaled_learning_rate",
    "train_custom_loop",
    "binary_metrics",
    "calibration",
    "evaluate_model",
    "group_auc",
    "log_loss",
    "roc_auc",
]
