"""Checkpoints that survive SIGKILL, crashes while saving, and NaN losses.

References: an uninterrupted run of the same command (steps, curve, AUC),
`ceil(rows / batch)` for the step count, and the arrays stored in the
checkpoint files read back with `tf.train.load_checkpoint`.
"""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.cli import main
from keras_adrec.data.synthetic import SyntheticCriteo
from keras_adrec.training.nan_guard import NanGuard
from keras_adrec.training.training_checkpoint import STATE_KEY
from keras_adrec.training.training_checkpoint import TrainingCheckpoint

TINY = ["--set", "bottom_units=[32]", "--set", "top_units=[32]"]
# Rows of the synthetic file of the kill test: 2,000 train, 500 validation.
SYNTHETIC_ROWS = 2500


@pytest.fixture(scope="module")
def small_criteo_file(tmp_path_factory):
    """Synthetic Criteo-format rows, few enough for three short runs."""
    directory = tmp_path_factory.mktemp("small")
    generator = SyntheticCriteo(rows_per_day=SYNTHETIC_ROWS, num_days=1)
    return generator.write_tsv(str(directory))[0]


def _train_args(criteo_file, output, checkpoint_dir, *extra):
    return [
        "train",
        "--data",
        f"criteo:{criteo_file}",
        "--output",
        str(output),
        "--checkpoint-dir",
        str(checkpoint_dir),
        "--quiet",
        *TINY,
        *extra,
    ]


def _latest_state(directory):
    """The JSON state of the checkpoint the index file names."""
    latest = tf.train.latest_checkpoint(str(directory))
    assert latest is not None, os.listdir(directory)
    state = tf.train.load_checkpoint(latest).get_tensor(STATE_KEY)
    return latest, json.loads(state)


def _stored_arrays(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "VARIABLE_VALUE" in name
    }


@pytest.mark.slow
def test_killed_run_resumes_with_same_steps_and_result(
    small_criteo_file, tmp_path
):
    extra = ["--batch-size", "32", "--eval-every", "10"]
    extra += ["--checkpoint-every", "5"]
    killed_args = _train_args(
        small_criteo_file, tmp_path / "run", tmp_path / "ckpt", *extra
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_adrec.cli", *killed_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    index = tmp_path / "ckpt" / "checkpoint"
    deadline = time.monotonic() + 300
    while not index.exists():
        assert process.poll() is None, "the run ended before a checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (tmp_path / "run" / "metrics.json").exists()
    _, state = _latest_state(tmp_path / "ckpt")
    expected_steps = math.ceil(SYNTHETIC_ROWS * 0.8 / 32)
    assert 0 < state["step"] < expected_steps and state["step"] % 5 == 0

    # The same command again, now to the end.
    assert main(killed_args) == 0
    resumed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # The reference: the same command never interrupted.
    full_args = _train_args(
        small_criteo_file, tmp_path / "full", tmp_path / "full_ckpt", *extra
    )
    assert main(full_args) == 0
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())

    assert resumed["resumed_from_step"] == state["step"]
    assert full["resumed_from_step"] == 0
    assert resumed["steps"] == full["steps"] == expected_steps
    # Weights, optimizer, dropout seeds and data position all came back,
    # so nothing is lost or repeated: the very same model.
    assert resumed["auc"] == pytest.approx(full["auc"], abs=1e-5)
    assert resumed["logloss"] == pytest.approx(full["logloss"], abs=1e-5)

    def curve_steps(name):
        lines = (tmp_path / name / "curve.csv").read_text().splitlines()
        return [int(line.split(",")[0]) for line in lines[1:]]

    assert curve_steps("run") == curve_steps("full")
    assert curve_steps("full") == list(range(10, expected_steps, 10)) + [
        expected_steps
    ]


# Saves an 8 MB checkpoint in a loop; every variable holds the step.
_SAVER = """
import sys
import keras
import numpy as np
from keras_adrec.training.training_checkpoint import TrainingCheckpoint

model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(2000)])
model.compile(optimizer="sgd", loss="mse")
checkpoint = TrainingCheckpoint(sys.argv[1], save_every=1)
checkpoint.restore(model)
for step in range(1, 10_000):
    for variable in model.variables:
        variable.assign(np.full(variable.shape, step, variable.dtype))
    checkpoint.step = step
    checkpoint.save()
"""


@pytest.mark.slow
def test_crash_while_saving_leaves_latest_checkpoint_readable(tmp_path):
    directory = tmp_path / "ckpt"
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SAVER), str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    deadline = time.monotonic() + 300
    index = directory / "checkpoint"
    while not index.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    # Let it save for a while: most of its time is spent writing files,
    # so the kill lands in the middle of a save more often than not.
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()

    prefix, state = _latest_state(directory)
    step = state["step"]
    assert step >= 1
    for name, value in _stored_arrays(prefix).items():
        if name.startswith("model_variables"):
            np.testing.assert_array_equal(value, np.full(value.shape, step))
    model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(2000)])
    model.compile(optimizer="sgd", loss="mse")
    restored = TrainingCheckpoint(str(directory), save_every=1)
    assert restored.restore(model) == step
    np.testing.assert_array_equal(model.layers[0].bias.numpy(), step)


def _small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _save_steps(directory, steps):
    model = _small_model()
    checkpoint = TrainingCheckpoint(str(directory), save_every=1)
    checkpoint.restore(model)
    for step in steps:
        model.layers[0].bias.assign([step, step])
        checkpoint.step = step
        checkpoint.save()
    return checkpoint


def test_partial_write_of_next_checkpoint_is_ignored(tmp_path):
    _save_steps(tmp_path, [1, 2])
    # A crash mid-save: the next checkpoint's files half written, the
    # index file not yet updated.
    (tmp_path / "ckpt-3.index").write_bytes(b"\x00partial")
    (tmp_path / "ckpt-3.data-00000-of-00001").write_bytes(b"\x00" * 7)
    model = _small_model()
    assert TrainingCheckpoint(str(tmp_path), 1).restore(model) == 2
    np.testing.assert_array_equal(model.layers[0].bias.numpy(), [2, 2])


def test_unreadable_latest_falls_back_to_previous(tmp_path):
    _save_steps(tmp_path, [1, 2])
    data = tmp_path / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:10])
    model = _small_model()
    assert TrainingCheckpoint(str(tmp_path), 1).restore(model) == 1
    np.testing.assert_array_equal(model.layers[0].bias.numpy(), [1, 1])


def test_restore_restores_optimizer_state(tmp_path):
    model = _small_model()
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    model.fit(x, y, verbose=0, epochs=3)
    checkpoint = TrainingCheckpoint(str(tmp_path), save_every=1)
    checkpoint.restore(model)
    checkpoint.step = 12
    checkpoint.save()
    fresh = _small_model()
    assert TrainingCheckpoint(str(tmp_path), 1).restore(fresh) == 12
    for a, b in zip(model.optimizer.variables, fresh.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(fresh.optimizer.iterations.numpy()) == 3


def test_checkpoint_of_other_settings_is_refused(tmp_path):
    _save_steps(tmp_path, [1])
    model = _small_model()
    other = TrainingCheckpoint(
        str(tmp_path), 1, fingerprint={"preset": {"batch_size": 64}}
    )
    with pytest.raises(FileExistsError, match="preset differ"):
        other.restore(model)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"directory": "", "save_every": 1}, "`directory`"),
        ({"directory": "d", "save_every": 0}, "`save_every`"),
        ({"directory": "d", "save_every": 1, "max_to_keep": 0}, "max_to"),
    ],
)
def test_invalid_checkpoint_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingCheckpoint(**kwargs)


def test_nan_guard_counts_from_initial_step():
    guard = NanGuard(initial_step=7)
    guard.set_model(_small_model())
    guard.on_train_batch_end(0, {"loss": 0.5})
    guard.on_train_batch_end(1, {"loss": float("inf")})
    assert guard.stopped_step == 9 and guard.model.stop_training
    message = guard.message()
    assert "at step 9 (resumed from step 7)" in message and "inf" in message
    with pytest.raises(ValueError, match="initial_step"):
        NanGuard(initial_step=-1)


# The optimizer update of this 0-based step makes the weights NaN.
POISONED_UPDATE = 5


class _NanFromStep(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate `rate`, then NaN from optimizer iteration `step` on."""

    def __init__(self, rate, step):
        self.rate = rate
        self.step = step

    def __call__(self, step):
        return keras.ops.where(
            keras.ops.greater_equal(step, self.step),
            float("nan"),
            self.rate,
        )

    def get_config(self):
        return {"rate": self.rate, "step": self.step}


@pytest.mark.slow
def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(
    criteo_file, tmp_path, capsys, monkeypatch
):
    # Inject the fault: the update of step POISONED_UPDATE (0-based) makes
    # every weight NaN, as a diverging run does, so the next loss is NaN.
    # No waiting for a large learning rate to overflow.
    from keras_adrec.training import build

    make_optimizer = build.make_optimizer

    def poisoned(name, learning_rate, config=None):
        return make_optimizer(
            name, _NanFromStep(learning_rate, POISONED_UPDATE), config
        )

    monkeypatch.setattr(build, "make_optimizer", poisoned)
    args = _train_args(
        criteo_file,
        tmp_path / "out",
        tmp_path / "ckpt",
        "--val-fraction",
        "0.95",
        "--batch-size",
        "32",
        "--checkpoint-every",
        "1",
    )
    assert main(args) == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith("adrec: error: Training diverged")
    assert "Traceback" not in message and len(message.splitlines()) == 1
    assert not (tmp_path / "out" / "model.keras").exists()

    stopped = int(message.split(" at step ")[1].split(",")[0])
    # Steps count from 1: update POISONED_UPDATE ends step
    # POISONED_UPDATE + 1, and the loss of the step after it is NaN.
    assert stopped == POISONED_UPDATE + 2
    prefix, state = _latest_state(tmp_path / "ckpt")
    # The checkpoint one step before the NaN held the weights that gave
    # it, so the last good one is older still.
    assert state["step"] <= stopped - 2
    assert f"(step {state['step']})" in message
    # The withdrawn checkpoint's index names files relative to its folder,
    # as tf.train.CheckpointManager writes them.
    index = (tmp_path / "ckpt" / "checkpoint").read_text()
    assert f'model_checkpoint_path: "{os.path.basename(prefix)}"' in index
    assert str(tmp_path) not in index
    for name, value in _stored_arrays(prefix).items():
        assert np.all(np.isfinite(value)), name

    # Resuming with other settings is refused in one line, exit status 2;
    # a new learning rate is allowed (to recover), so only the seed counts.
    changed = args + ["--set", "learning_rate=0.01", "--seed", "1"]
    assert main(changed) == 2
    refused = capsys.readouterr().err.strip()
    assert "other settings (seed differ)" in refused
    assert len(refused.splitlines()) == 1
