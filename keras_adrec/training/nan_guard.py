import math

import keras


class NanGuard(keras.callbacks.TerminateOnNaN):
    """Stop training at the first NaN or infinite loss and say where.

    `keras.callbacks.TerminateOnNaN` with a step count that survives a
    resume and a message a person can act on. At the first step whose loss
    is NaN or infinite it sets `model.stop_training` (so other callbacks,
    such as `TrainingCheckpoint`, see `on_train_end` and keep their last
    good state) and records the step in `stopped_step` and the loss in
    `bad_loss`; `message()` then explains what happened. The training code
    decides what to raise (`adrec train` exits with status 1).

    Args:
        initial_step: int. Steps already done before this run (a resumed
            run). Defaults to `0`.

    Example:

    ```python
    guard = NanGuard()
    model.fit(train_ds, callbacks=[guard])
    if guard.stopped_step is not None:
        raise FloatingPointError(guard.message())
    ```
    """

    def __init__(self, initial_step=0):
        super().__init__(raise_error=False)
        if int(initial_step) < 0:
            raise ValueError(
                "`initial_step` must be non-negative. "
                f"Received: initial_step={initial_step}"
            )
        self.initial_step = int(initial_step)
        self.step = self.initial_step
        self.stopped_step = None
        self.bad_loss = None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        loss = (logs or {}).get("loss")
        if loss is None or self.stopped_step is not None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            self.stopped_step = self.step
            self.bad_loss = loss
            self.model.stop_training = True

    def message(self, checkpoint_note=""):
        """A one-paragraph explanation of the stop, or "" if none.

        Args:
            checkpoint_note: str appended after the explanation, e.g. where
                the last good checkpoint is.
        """
        if self.stopped_step is None:
            return ""
        resumed = (
            f" (resumed from step {self.initial_step})"
            if self.initial_step
            else ""
        )
        text = (
            f"Training diverged: the loss became {self.bad_loss} at step "
            f"{self.stopped_step}{resumed}, so training stopped and no model "
            "was saved. Lower the learning rate (--set learning_rate=...) "
            "or turn mixed precision off."
        )
        if checkpoint_note:
            text += " " + checkpoint_note
        return text
