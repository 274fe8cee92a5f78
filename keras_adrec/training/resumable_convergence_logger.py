import csv
import math

import keras
import tensorflow as tf

from keras_adrec.training.convergence_logger import CURVE_FIELDS
from keras_adrec.training.convergence_logger import ConvergenceLogger


class ResumableConvergenceLogger(ConvergenceLogger):
    """`ConvergenceLogger` that resumes and evaluates under a strategy.

    Additions to `keras_adrec.training.ConvergenceLogger`:

    - `get_state()` / `set_state()`: the step counter, the curve rows and
      the target bookkeeping as a JSON-ready dict. `TrainingCheckpoint`
      stores it with each checkpoint, so a resumed run counts steps from
      the restored step and its curve file holds the rows written before
      the interruption too.
    - Under a distribution strategy, Keras' `predict_on_batch` runs the
      whole batch on every replica and concatenates the copies (so the
      predictions outnumber the labels); this logger evaluates with a plain
      call of the model instead, which reads the replicated weights once.
    - After a NaN or infinite training loss, no final evaluation.

    Args: as `ConvergenceLogger`.

    Example:

    ```python
    logger = ResumableConvergenceLogger(val_ds, eval_every=100)
    logger.set_state(saved_state)  # continue a resumed run's curve
    model.fit(train_ds, callbacks=[logger])
    ```
    """

    def set_model(self, model):
        created_in_scope = getattr(model, "_distribute_strategy", None)
        if created_in_scope is not None or tf.distribute.has_strategy():
            model = _DirectPredictor(model)
        super().set_model(model)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.curve_path and self.rows:
            with open(self.curve_path, "a", newline="") as handle:
                writer = csv.writer(handle)
                for row in self.rows:
                    writer.writerow([row[k] for k in CURVE_FIELDS])

    def on_train_end(self, logs=None):
        if not math.isfinite(getattr(self, "_last_loss", 0.0)):
            # Diverged: evaluating NaN weights tells nothing.
            return
        super().on_train_end(logs)

    def get_state(self):
        """The resumable part of the logger, JSON-ready."""
        return {
            "steps": self.steps,
            "rows": [dict(row) for row in self.rows],
            "steps_to_target": self.steps_to_target,
            "seconds_to_target": self.seconds_to_target,
            "train_seconds": self._train_seconds,
            "last_loss": getattr(self, "_last_loss", None),
        }

    def set_state(self, state):
        """Continue from a `get_state()` dict."""
        self.steps = int(state["steps"])
        self.rows = [dict(row) for row in state["rows"]]
        self.steps_to_target = state["steps_to_target"]
        self.seconds_to_target = state["seconds_to_target"]
        self._train_seconds = float(state["train_seconds"])
        if state.get("last_loss") is not None:
            self._last_loss = float(state["last_loss"])
        self.final_metrics = dict(self.rows[-1]) if self.rows else None


class _DirectPredictor:
    """Stands in for a model: `predict_on_batch` is one direct call.

    Every other attribute (read or written, like `stop_training`) is the
    wrapped model's.
    """

    def __init__(self, model):
        object.__setattr__(self, "_model", model)

    def predict_on_batch(self, inputs):
        outputs = self._model(inputs, training=False)
        return keras.ops.convert_to_numpy(outputs)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __setattr__(self, name, value):
        setattr(self._model, name, value)
