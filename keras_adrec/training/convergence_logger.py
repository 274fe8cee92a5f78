import csv
import json
import time

import keras
import numpy as np

from keras_adrec.training.metrics import evaluate_model

CURVE_FIELDS = (
    "step",
    "train_loss",
    "val_auc",
    "val_logloss",
    "val_accuracy",
    "train_seconds",
    "wall_seconds",
)


class ConvergenceLogger(keras.callbacks.Callback):
    """Evaluate every N steps, log the curve and stop at a target AUC.

    This is DLRM's `--test-freq` protocol as a Keras callback: every
    `eval_every` training steps (and once at the end) the model predicts the
    whole validation set, exact AUC, logloss and accuracy are computed
    (`keras_adrec.training.metrics`), and a row is added to the curve. When
    `target_auc` is set and reached, training stops and the step is kept in
    `steps_to_target`.

    Timing: `train_seconds` counts only time spent in training steps (the
    clock pauses while evaluating), `wall_seconds` counts everything since
    training began. Training throughput (`samples_per_sec`) is the batch
    size over the median step time, skipping the first `warmup_steps` steps
    (graph tracing).

    Args:
        validation_data: `tf.data.Dataset` of `(features, label)` batches.
        eval_every: int or None. Steps between evaluations; None evaluates
            only at the end of training.
        target_auc: float or None. Stop when validation AUC reaches it.
        curve_path: str or None. CSV file receiving the curve rows.
        batch_size: int or None. Samples per step, for `samples_per_sec`.
        warmup_steps: int. Steps left out of the throughput median.
        verbose: bool. Print one line per evaluation.

    Example:

    ```python
    logger = keras_adrec.training.ConvergenceLogger(
        val_ds, eval_every=100, target_auc=0.78, curve_path="curve.csv")
    model.fit(train_ds, callbacks=[logger])
    logger.steps_to_target  # step that reached 0.78, or None
    ```
    """

    def __init__(
        self,
        validation_data,
        eval_every=None,
        target_auc=None,
        curve_path=None,
        batch_size=None,
        warmup_steps=5,
        verbose=False,
    ):
        super().__init__()
        if eval_every is not None and int(eval_every) < 1:
            raise ValueError(
                "`eval_every` must be positive or None. "
                f"Received: eval_every={eval_every}"
            )
        if target_auc is not None and not 0.0 < float(target_auc) <= 1.0:
            raise ValueError(
                "`target_auc` must lie in (0, 1]. "
                f"Received: target_auc={target_auc}"
            )
        self.validation_data = validation_data
        self.eval_every = None if eval_every is None else int(eval_every)
        self.target_auc = None if target_auc is None else float(target_auc)
        self.curve_path = curve_path
        self.batch_size = batch_size
        self.warmup_steps = int(warmup_steps)
        self.verbose = verbose
        self.rows = []
        self.steps = 0
        self.steps_to_target = None
        self.seconds_to_target = None
        self.final_metrics = None
        self._step_times = []
        self._train_seconds = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        if self.curve_path:
            with open(self.curve_path, "w", newline="") as handle:
                csv.writer(handle).writerow(CURVE_FIELDS)

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        elapsed = time.perf_counter() - self._batch_start
        self._train_seconds += elapsed
        self.steps += 1
        if self.steps > self.warmup_steps:
            self._step_times.append(elapsed)
        self._last_loss = float((logs or {}).get("loss", float("nan")))
        if self.eval_every and self.steps % self.eval_every == 0:
            self._evaluate()

    def on_train_end(self, logs=None):
        if not self.rows or self.rows[-1]["step"] != self.steps:
            self._evaluate()
        self.final_metrics = dict(self.rows[-1]) if self.rows else None

    def _evaluate(self):
        metrics = evaluate_model(self.model, self.validation_data)
        row = {
            "step": self.steps,
            "train_loss": getattr(self, "_last_loss", float("nan")),
            "val_auc": metrics["auc"],
            "val_logloss": metrics["logloss"],
            "val_accuracy": metrics["accuracy"],
            "val_constant_predictions": metrics["constant_predictions"],
            "val_calibration": metrics["calibration"],
            "train_seconds": self._train_seconds,
            "wall_seconds": time.perf_counter() - self._start,
        }
        if "gauc" in metrics:
            row["val_gauc"] = metrics["gauc"]
        self.rows.append(row)
        if self.curve_path:
            with open(self.curve_path, "a", newline="") as handle:
                csv.writer(handle).writerow([row[k] for k in CURVE_FIELDS])
        if self.verbose:
            print(
                f"step {row['step']}: val_auc={row['val_auc']:.4f} "
                f"val_logloss={row['val_logloss']:.4f}",
                flush=True,
            )
        reached = (
            self.target_auc is not None
            and self.steps_to_target is None
            and row["val_auc"] >= self.target_auc
        )
        if reached:
            self.steps_to_target = self.steps
            self.seconds_to_target = self._train_seconds
            self.model.stop_training = True

    @property
    def samples_per_sec(self):
        """Training samples per second (median step), or None."""
        if not self._step_times or not self.batch_size:
            return None
        return float(self.batch_size / np.median(self._step_times))

    def summary(self):
        """A JSON-ready dict: final metrics, steps, target and throughput."""
        final = self.final_metrics or {}
        summary = {
            "auc": final.get("val_auc"),
            "logloss": final.get("val_logloss"),
            "accuracy": final.get("val_accuracy"),
            "constant_predictions": final.get("val_constant_predictions"),
            "calibration": final.get("val_calibration"),
            "steps": self.steps,
            "target_auc": self.target_auc,
            "steps_to_target": self.steps_to_target,
            "seconds_to_target": self.seconds_to_target,
            "train_seconds": self._train_seconds,
            "samples_per_sec": self.samples_per_sec,
        }
        if "val_gauc" in final:
            summary["gauc"] = final["val_gauc"]
        return summary

    def curve(self):
        """The evaluations so far: a list of dicts with `step`, `val_auc`
        and `train_seconds`."""
        return [
            {
                "step": r["step"],
                "val_auc": r["val_auc"],
                "train_seconds": r["train_seconds"],
            }
            for r in self.rows
        ]

    def write_summary(self, path):
        with open(path, "w") as handle:
            json.dump(self.summary(), handle, indent=2)
