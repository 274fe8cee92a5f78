"""Exact validation AUC in the epoch logs, the tuners' objective."""

import keras
import numpy as np

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.training.metrics import binary_metrics
from keras_adrec.training.metrics import predict_with_labels

OBJECTIVE = "val_auc"


@keras_adrec_export
class ValidationAUC(keras.callbacks.Callback):
    """Add the exact `val_auc` and `val_logloss` to each epoch's logs.

    Keras' streaming `AUC` metric approximates with fixed thresholds; this
    callback predicts the whole validation set at the end of every epoch
    and computes the exact AUC (`keras_adrec.training.metrics`), so the
    tuner's objective `keras_tuner.Objective("val_auc", "max")` ranks trials
    by the same number `adrec train` reports. It must come before the
    callbacks that read `val_auc` (early stopping, the tuner's checkpoint).

    Non-finite predictions (a diverged model) give `val_auc = nan` and stop
    training; KerasTuner then marks the trial invalid.

    Args:
        validation_data: `(features, labels)` numpy arrays, or a
            `tf.data.Dataset` of `(features, label)` batches.
        batch_size: int. Prediction batch size for array data. Defaults to
            `4096`.

    Example:

    ```python
    model.fit(x, y, callbacks=[
        tuning.ValidationAUC((x_val, y_val)),
        keras.callbacks.EarlyStopping("val_auc", mode="max", patience=2),
    ])
    ```
    """

    def __init__(self, validation_data, batch_size=4096):
        super().__init__()
        if int(batch_size) < 1:
            raise ValueError(
                "`batch_size` must be positive. "
                f"Received: batch_size={batch_size}"
            )
        self.validation_data = validation_data
        self.batch_size = int(batch_size)

    def _predict(self):
        data = self.validation_data
        if isinstance(data, (tuple, list)):
            features, labels = data[0], data[1]
            scores = self.model.predict(
                features, batch_size=self.batch_size, verbose=0
            )
            return np.asarray(labels).reshape(-1), np.asarray(scores)
        return predict_with_labels(self.model, data)

    def on_epoch_end(self, epoch, logs=None):
        labels, scores = self._predict()
        scores = np.asarray(scores, dtype="float64").reshape(-1)
        if logs is None:
            return
        if not np.all(np.isfinite(scores)):
            logs["val_auc"] = float("nan")
            logs["val_logloss"] = float("nan")
            self.model.stop_training = True
            return
        metrics = binary_metrics(labels, scores)
        logs["val_auc"] = metrics["auc"]
        logs["val_logloss"] = metrics["logloss"]

    def get_config(self):
        return {"batch_size": self.batch_size}


def fit_for_trial(
    model,
    x,
    y=None,
    validation_data=None,
    batch_size=128,
    epochs=1,
    callbacks=None,
    patience=2,
    verbose=0,
    **kwargs,
):
    """`model.fit` for a tuning trial: exact val AUC, early stopping.

    `validation_data` is not passed to Keras; `ValidationAUC` evaluates it
    once per epoch and writes `val_auc`, which `EarlyStopping` (patience
    `patience` epochs) and the tuner's callbacks then read. Rows keep their
    order (`shuffle=False`), as in `adrec train`.

    Returns:
        The `History`.
    """
    if validation_data is None:
        raise ValueError(
            "A tuning trial needs `validation_data`: the objective is the "
            "validation AUC."
        )
    own = [
        ValidationAUC(validation_data),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(
            monitor=OBJECTIVE, mode="max", patience=int(patience)
        ),
    ]
    kwargs.setdefault("shuffle", False)
    return model.fit(
        x,
        y,
        batch_size=None if _is_dataset(x) else int(batch_size),
        epochs=epochs,
        callbacks=own + list(callbacks or []),
        verbose=verbose,
        **kwargs,
    )


def _is_dataset(x):
    return hasattr(x, "element_spec")
