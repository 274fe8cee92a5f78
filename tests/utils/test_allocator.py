"""Allocator tuning: an explicit call, never a reader's side effect.

TensorFlow sets glibc's trim threshold to 128 KB the first time a process
runs a `from_generator` dataset. `tune_malloc_for_training()` lets that
patch happen and then undoes it; the `adrec` command calls it once as it
starts, and the readers never touch the allocator (see
`keras_adrec/utils/allocator.py`).
"""

import os
import platform
import subprocess
import sys
import types

import pytest

from keras_adrec import cli
from keras_adrec.data import parquet
from keras_adrec.data import synthetic
from keras_adrec.utils import allocator
from keras_adrec.utils import restore_malloc_thresholds
from keras_adrec.utils import tune_malloc_for_training

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
ONLY_GLIBC = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
)


class _FakeLibc:
    def __init__(self, result=1, events=None):
        self.calls = []
        self.result = result
        self.events = events if events is not None else []

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        self.events.append("mallopt")
        return self.result


def test_sets_both_thresholds_to_the_adaptive_ceilings(monkeypatch):
    libc = _FakeLibc()
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    assert restore_malloc_thresholds() is True
    assert libc.calls == [(-1, 64 * 1024 * 1024), (-3, 32 * 1024 * 1024)]


def test_reports_a_refused_setting(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: _FakeLibc(result=0))
    assert restore_malloc_thresholds() is False


def test_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: False)
    assert restore_malloc_thresholds() is False
    assert tune_malloc_for_training() is False


@ONLY_GLIBC
def test_glibc_accepts_the_thresholds():
    assert restore_malloc_thresholds() is True


def test_tuning_runs_tensorflows_patch_before_setting(monkeypatch):
    events = []
    libc = _FakeLibc(events=events)
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    monkeypatch.setattr(
        allocator,
        "_run_tensorflow_generator_patch",
        lambda: events.append("generator"),
    )
    assert tune_malloc_for_training() is True
    assert events == ["generator", "mallopt", "mallopt"]
    assert libc.calls == [(-1, 64 * 1024 * 1024), (-3, 32 * 1024 * 1024)]


@pytest.mark.slow
@ONLY_GLIBC
def test_tensorflow_patches_during_the_call_and_never_after():
    # A fresh process: TensorFlow patches the allocator once per process,
    # and that must happen inside the tuning call, not in a later generator
    # dataset (as a reader runs). The allocator module is loaded alone, from
    # its file: no Keras import.
    script = (
        "import importlib.util, sys\n"
        "import tensorflow as tf\n"
        "spec = importlib.util.spec_from_file_location('a', sys.argv[1])\n"
        "allocator = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(allocator)\n"
        "assert allocator.tune_malloc_for_training()\n"
        "sys.stderr.write('TUNED\\n'); sys.stderr.flush()\n"
        "def rows():\n"
        "    yield from range(3)\n"
        "kind = tf.TensorSpec((), tf.int64)\n"
        "data = tf.data.Dataset.from_generator(rows, output_signature=kind)\n"
        "assert [int(x) for x in data] == [0, 1, 2]\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0", PYTHONPATH=REPO)
    result = subprocess.run(
        [sys.executable, "-c", script, allocator.__file__],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    before, tuned, after = result.stderr.partition("TUNED\n")
    assert tuned
    assert "Memory patch applied" in before
    assert "Memory patch applied" not in after


def _spy_on_the_allocator(monkeypatch):
    """Every way keras_adrec could set the allocator, recorded."""
    libc = _FakeLibc()
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    calls = []
    for name in ("restore_malloc_thresholds", "tune_malloc_for_training"):
        monkeypatch.setattr(
            allocator, name, lambda name=name: calls.append(name)
        )
    return libc, calls


def test_synthetic_dataset_leaves_the_thresholds_alone(monkeypatch):
    libc, calls = _spy_on_the_allocator(monkeypatch)
    generator = synthetic.SyntheticCriteo(rows_per_day=200, num_days=1)
    batches = list(generator.dataset(days=[0], batch_size=64))
    assert len(batches) == 4
    assert libc.calls == [] and calls == []


def test_parquet_dataset_leaves_the_thresholds_alone(monkeypatch, tmp_path):
    generator = synthetic.SyntheticCriteo(rows_per_day=300, num_days=1)
    files = generator.write_parquet(str(tmp_path))
    libc, calls = _spy_on_the_allocator(monkeypatch)
    rows = sum(
        int(label.shape[0])
        for _, label in parquet.parquet_dataset(files, batch_size=128)
    )
    assert rows == 300
    assert libc.calls == [] and calls == []


def test_the_adrec_command_tunes_once_before_it_runs(monkeypatch):
    events = []
    monkeypatch.setattr(
        cli, "tune_malloc_for_training", lambda: events.append("tune")
    )
    fake = types.SimpleNamespace(
        add_parser=cli.COMMANDS["evaluate"].add_parser,
        run=lambda args: events.append("run"),
    )
    monkeypatch.setitem(cli.COMMANDS, "evaluate", fake)
    assert cli.main(["evaluate", "--model", "m", "--data", "d"]) == 0
    assert events == ["tune", "run"]


def test_bad_usage_does_not_touch_the_allocator(monkeypatch, capsys):
    events = []
    monkeypatch.setattr(
        cli, "tune_malloc_for_training", lambda: events.append("tune")
    )
    assert cli.main(["evaluate", "--no-such-flag"]) == 2
    assert "adrec: error:" in capsys.readouterr().err
    assert events == []


@pytest.mark.parametrize(
    "strategy, tuned", [("default", True), ("multiworker", False)]
)
def test_multiworker_training_leaves_the_runtime_unstarted(
    monkeypatch, strategy, tuned
):
    # The tuning runs a dataset, which starts TensorFlow's runtime; then
    # MultiWorkerMirroredStrategy could not configure its collectives.
    events = []
    monkeypatch.setattr(
        cli, "tune_malloc_for_training", lambda: events.append("tune")
    )
    fake = types.SimpleNamespace(
        add_parser=cli.COMMANDS["train"].add_parser,
        run=lambda args: events.append("run"),
    )
    monkeypatch.setitem(cli.COMMANDS, "train", fake)
    argv = ["train", "--data", "criteo:d", "--output", "o"]
    assert cli.main([*argv, "--strategy", strategy]) == 0
    assert events == (["tune", "run"] if tuned else ["run"])
