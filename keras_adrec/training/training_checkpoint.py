import json
import math
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

STATE_KEY = "state/.ATTRIBUTES/py_state"


class TrainingCheckpoint(keras.callbacks.Callback):
    """Step checkpoints of a training run that survive any crash.

    Every `save_every` training steps (and when training ends normally) the
    callback writes one TensorFlow checkpoint holding every model variable
    (weights and dropout seed state), every optimizer variable (iterations,
    slots, loss scale) and a JSON state: the global step, a fingerprint of
    the run's settings and the state of each object in `trackers` (for
    example the `ResumableConvergenceLogger` curve). `restore()` brings all
    of it back, so a run killed with SIGKILL and started again with the same
    command continues from the last checkpoint; the training code skips the
    `restore()`d number of batches.

    Crash safety comes from TensorFlow's checkpoint protocol, which this
    class relies on: a checkpoint's files are written in full first, and
    only then is the `checkpoint` index file that names the latest one
    replaced, by an atomic rename. A process killed while saving leaves the
    index naming the previous, complete checkpoint. The last `max_to_keep`
    checkpoints are kept, and `restore()` falls back to an older one if the
    latest cannot be read (for example a disk that lost a file).

    A checkpoint is never written with a NaN or infinite loss or weight,
    and a checkpoint whose weights gave a non-finite loss at the very next
    step is withdrawn, so after divergence the directory holds the last
    good state.

    Multi-worker: every worker saves (as `tf.distribute` requires); the
    chief into `directory`, the others into a scratch folder they delete.
    All workers restore from `directory`, which must be on a file system
    they share.

    Args:
        directory: str. Folder of the checkpoints (created).
        save_every: int. Steps between checkpoints.
        max_to_keep: int. Checkpoints kept. Defaults to `2`.
        fingerprint: JSON-ready dict of the settings a resumed run must
            share (data, preset fields, seed, ...); `restore()` refuses a
            checkpoint written with different ones. Defaults to None.
        trackers: dict of name to an object with `get_state()` (JSON-ready)
            and `set_state(state)`, saved and restored with the variables.
        is_chief: bool. Whether this process writes `directory`.
            Defaults to `True`.
        task_label: str. Name of this process's scratch folder when not
            the chief. Defaults to `"worker"`.

    Example:

    ```python
    checkpoint = TrainingCheckpoint("ckpt", save_every=100)
    step = checkpoint.restore(model)  # 0 on a fresh start
    model.fit(train_ds.skip(step), callbacks=[checkpoint])
    ```
    """

    def __init__(
        self,
        directory,
        save_every,
        max_to_keep=2,
        fingerprint=None,
        trackers=None,
        is_chief=True,
        task_label="worker",
    ):
        super().__init__()
        if not directory:
            raise ValueError(
                "`directory` must be a folder path. "
                f"Received: directory={directory!r}"
            )
        if int(save_every) < 1:
            raise ValueError(
                "`save_every` must be positive. "
                f"Received: save_every={save_every}"
            )
        if int(max_to_keep) < 1:
            raise ValueError(
                "`max_to_keep` must be positive. "
                f"Received: max_to_keep={max_to_keep}"
            )
        self.directory = str(directory)
        self.save_every = int(save_every)
        self.max_to_keep = int(max_to_keep)
        self.fingerprint = json.loads(json.dumps(fingerprint or {}))
        self.trackers = dict(trackers or {})
        self.is_chief = bool(is_chief)
        self.task_label = str(task_label)
        self.step = 0
        self.finished = False
        self.last_saved_step = None
        self._diverged = False
        self._checkpoint = None
        self._manager = None

    def _attach(self, model):
        if self._checkpoint is not None:
            return
        if not model.built:
            raise ValueError(
                "Build the model (and its optimizer) before restoring or "
                "saving a training checkpoint."
            )
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            with model.distribute_strategy.scope():
                optimizer.build(model.trainable_variables)
        self._model_ref = model
        self._checkpoint = tf.train.Checkpoint(
            model_variables=list(model.variables),
            optimizer_variables=(
                list(optimizer.variables) if optimizer is not None else []
            ),
            state=_JsonState(self._get_state, self._set_state),
        )
        os.makedirs(self.directory, exist_ok=True)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, self.directory, max_to_keep=self.max_to_keep
        )

    def _get_state(self):
        return {
            "step": self.step,
            "finished": self.finished,
            "fingerprint": self.fingerprint,
            "trackers": {
                name: tracker.get_state()
                for name, tracker in self.trackers.items()
            },
        }

    def _set_state(self, state):
        self._restored_state = state

    def latest_checkpoint(self):
        """Path prefix of the latest complete checkpoint, or None."""
        return tf.train.latest_checkpoint(self.directory)

    def restore(self, model):
        """Load the latest readable checkpoint into `model` and trackers.

        Args:
            model: the built, compiled model being trained.

        Returns:
            int, the global step of the restored checkpoint (the number of
            batches already trained); `0` when there is none.

        Raises:
            FileExistsError: the checkpoint was written by a run with
                another `fingerprint`.
            OSError: checkpoints exist but none can be read.
        """
        self._attach(model)
        candidates = list(reversed(self._manager.checkpoints))
        latest = self._manager.latest_checkpoint
        if latest and latest not in candidates:
            candidates.insert(0, latest)
        errors = []
        for path in candidates:
            state = self._read_state(path, errors)
            if state is None:
                continue
            self._check_fingerprint(state, path)
            try:
                status = self._checkpoint.restore(path)
                status.assert_existing_objects_matched()
            except Exception as error:  # A damaged file fails in many ways.
                errors.append(f"{path}: {type(error).__name__}: {error}")
                continue
            for name, tracker in self.trackers.items():
                if name in state["trackers"]:
                    tracker.set_state(state["trackers"][name])
            self.step = int(state["step"])
            self.finished = bool(state["finished"])
            self.last_saved_step = self.step
            return self.step
        if candidates:
            raise OSError(
                f"No checkpoint in {self.directory} could be read: "
                + "; ".join(errors)
            )
        return 0

    def _read_state(self, path, errors):
        try:
            reader = tf.train.load_checkpoint(path)
            return json.loads(reader.get_tensor(STATE_KEY))
        except Exception as error:  # A damaged file fails in many ways.
            errors.append(f"{path}: {type(error).__name__}: {error}")
            return None

    def _check_fingerprint(self, state, path):
        saved = state.get("fingerprint", {})
        if saved == self.fingerprint:
            return
        changed = sorted(
            key
            for key in set(saved) | set(self.fingerprint)
            if saved.get(key) != self.fingerprint.get(key)
        )
        raise FileExistsError(
            f"The checkpoint {path} belongs to a run with other settings "
            f"({', '.join(changed)} differ). Resume with the same command, "
            "or give a new --checkpoint-dir (or delete this one) to start "
            "over."
        )

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self._diverged:
            return
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._diverged = True
            if self.last_saved_step == self.step - 1:
                # The weights of that checkpoint gave this non-finite loss.
                self._discard_latest()
            return
        if self.step % self.save_every == 0:
            self.save()

    def _discard_latest(self):
        recorded = tf.train.get_checkpoint_state(self.directory)
        if not self.is_chief or recorded is None:
            return
        paths = list(recorded.all_model_checkpoint_paths)
        times = list(recorded.all_model_checkpoint_timestamps)
        bad = paths.pop()
        times = times[: len(paths)]
        if paths:
            # The atomic index rewrite CheckpointManager.save does, through
            # the public v1 API; file names relative to the directory, as
            # the manager writes them, so the folder can move.
            names = [os.path.basename(path) for path in paths]
            tf.compat.v1.train.update_checkpoint_state(
                os.path.abspath(self.directory),
                names[-1],
                all_model_checkpoint_paths=names,
                all_model_checkpoint_timestamps=times or None,
                last_preserved_timestamp=recorded.last_preserved_timestamp,
            )
            state = self._read_state(paths[-1], [])
            self.last_saved_step = None if state is None else state["step"]
        else:
            tf.io.gfile.remove(os.path.join(self.directory, "checkpoint"))
            self.last_saved_step = None
        for name in tf.io.gfile.glob(bad + ".*"):
            tf.io.gfile.remove(name)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, self.directory, max_to_keep=self.max_to_keep
        )

    def on_train_end(self, logs=None):
        if self._diverged or self.finished:
            return
        self.finished = True
        self.save()

    def save(self):
        """Write a checkpoint of the current step (skipped if non-finite).

        Returns:
            The checkpoint path, or None when the weights were not finite.
        """
        model = getattr(self, "_model_ref", None) or self.model
        self._attach(model)
        if not _all_finite(model.trainable_variables):
            self._diverged = True
            return None
        if self.is_chief:
            path = self._manager.save()
        else:
            scratch = os.path.join(self.directory, f".{self.task_label}")
            path = self._checkpoint.write(os.path.join(scratch, "ckpt"))
            shutil.rmtree(scratch, ignore_errors=True)
        self.last_saved_step = self.step
        return path


def _all_finite(variables):
    for variable in variables:
        value = keras.ops.convert_to_numpy(variable)
        if np.issubdtype(value.dtype, np.floating) and not np.all(
            np.isfinite(value)
        ):
            return False
    return True


class _JsonState(tf.train.experimental.PythonState):
    """A JSON dict saved inside the checkpoint, atomically with it."""

    def __init__(self, getter, setter):
        self._getter = getter
        self._setter = setter

    def serialize(self):
        return json.dumps(self._getter())

    def deserialize(self, string_value):
        value = string_value
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        self._setter(json.loads(value))
