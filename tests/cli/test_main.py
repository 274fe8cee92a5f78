"""End-to-end tests of the `adrec` command (train, evaluate, compare).

Commands run in-process through `main([...])`; each entry point runs in a
subprocess once, with a user's environment (no TF_CPP_MIN_LOG_LEVEL, any
KERAS_BACKEND): the console script for a train and an evaluate, `python -m
keras_adrec.cli` for a data error. So do the checks that need a fresh
interpreter (no keras-tuner, loading a saved model after `import
keras_adrec` alone).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from keras_adrec.cli import main
from tests import samples
from tests.test_case import run_python

TINY = ["--set", "bottom_units=[32]", "--set", "top_units=[32]"]


def _user_env(**changes):
    """A user's environment: without the suite's `TF_CPP_MIN_LOG_LEVEL`
    and `KERAS_BACKEND` (tests/conftest.py), with `changes`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")
    }
    env.update(changes)
    return env


def _one_line_error(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def trained(criteo_file, tmp_path_factory):
    """A tiny RM1 Ad-Rec model trained by `adrec train`."""
    out = tmp_path_factory.mktemp("cli") / "run"
    status = main(
        [
            "train",
            "--data",
            f"criteo:{criteo_file}",
            "--preset",
            "rm1",
            "--interaction",
            "adrec",
            "--output",
            str(out),
            "--eval-every",
            "20",
            "--target-auc",
            "0.55",
            "--quiet",
            *TINY,
        ]
    )
    assert status == 0
    return out


def test_train_writes_the_model_directory(trained):
    out = trained
    for name in ("model.keras", "config.json", "curve.csv", "metrics.json"):
        assert (out / name).is_file(), name
    assert (out / "preprocessing").is_dir()
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("auc", "logloss", "accuracy", "steps", "steps_to_target"):
        assert key in metrics
    assert metrics["samples_per_sec"] > 0
    assert metrics["constant_predictions"] is False
    calibration = metrics["calibration"]
    assert set(calibration) == {"ece", "predicted_ctr", "observed_ctr"}
    assert 0 <= calibration["ece"] <= 1
    assert 0 < calibration["observed_ctr"] < 1
    assert "gauc" not in metrics  # Criteo has no group column
    # On the real rows this model reaches 0.6-0.7; on the synthetic
    # fallback about 0.548 (see `criteo_auc_bar`).
    assert metrics["auc"] > samples.criteo_auc_bar(0.55)
    curve = (out / "curve.csv").read_text().splitlines()
    assert curve[0].startswith("step,train_loss,val_auc")
    assert len(curve) >= 2


@pytest.mark.slow
def test_console_script_evaluates(trained, criteo_file):
    """The installed `adrec` entry point, in its own process."""
    adrec = shutil.which("adrec") or pytest.skip("`adrec` is not on PATH")
    result = subprocess.run(
        [
            adrec,
            "evaluate",
            "--model",
            str(trained),
            "--data",
            f"criteo:{criteo_file}",
        ],
        capture_output=True,
        text=True,
        env=_user_env(),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(evaluated) >= {"auc", "logloss", "accuracy", "calibration"}
    assert 0.5 < evaluated["auc"] <= 1.0
    # TensorFlow's native start-up notices stay off the command's stderr.
    assert "cuda" not in result.stderr.lower(), result.stderr


@pytest.mark.slow
def test_import_keras_adrec_is_enough_to_load_a_saved_model(trained):
    """`.keras` files name `keras_adrec>Class`; importing the package
    registers every class, in a fresh interpreter."""
    out = run_python(
        "import keras, keras_adrec\n"
        f"model = keras.saving.load_model({str(trained / 'model.keras')!r})\n"
        "print(type(model).__name__, type(model.interaction).__name__)\n"
    )
    assert out.strip().splitlines()[-1] == "RankingModel AdRecInteraction"


@pytest.mark.slow
def test_every_command_but_tune_runs_without_keras_tuner(tmp_path):
    """keras-tuner is optional: `--help` and a tiny compare run without
    it, and `adrec tune` exits 2 naming the extra."""
    code = (
        "import sys\n"
        "sys.modules['keras_tuner'] = None  # as if not installed\n"
        "from keras_adrec.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "status = main(['compare', '--synthetic', '700', '--interactions',\n"
        "    'dot', '--seeds', '1', '--set', 'bottom_units=[8]',\n"
        "    '--set', 'top_units=[8]', '--quiet',\n"
        f"    '--output', {str(tmp_path / 'cmp')!r}])\n"
        "assert status == 0, status\n"
        "status = main(['tune', '--data', 'criteo:x', '--output', 'y'])\n"
        "print('tune status', status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tune status 2" in result.stdout
    assert 'pip install "keras-adrec[tune]"' in result.stderr


@pytest.mark.slow
def test_same_seed_same_metrics(criteo_file, tmp_path):
    def run(name):
        main(
            [
                "train",
                "--data",
                f"criteo:{criteo_file}",
                "--interaction",
                "dot",
                "--output",
                str(tmp_path / name),
                "--seed",
                "3",
                "--quiet",
                *TINY,
            ]
        )
        return json.loads((tmp_path / name / "metrics.json").read_text())

    first, second = run("a"), run("b")
    assert first["auc"] == second["auc"]
    assert first["logloss"] == second["logloss"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--preset": "rm9"}, "Unknown preset"),
        ({"--interaction": "cross"}, "unknown interaction"),
        ({"--set": "num_head=2"}, "Unknown preset field"),
        ({"--data": "orc:x"}, "Unknown data kind"),  # parquet: is known
        ({"--data": "criteo:/no/such/file"}, "does not exist"),
    ],
)
def test_invalid_usage_exits_2_in_one_line(change, message, tmp_path, capsys):
    options = {"--data": f"criteo:{__file__}", "--output": str(tmp_path)}
    options.update(change)
    status = main(["train", *[x for kv in options.items() for x in kv]])
    assert status == 2
    assert message in _one_line_error(capsys)


def test_malformed_data_exits_1_with_reader_error(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    good = "0\t" + "\t".join(["1"] * 13) + "\t" + "\t".join(["0a0b0c0d"] * 26)
    bad.write_text("\n".join([good] * 30 + ["2" + good[1:]] + [good] * 30))
    status = main(
        [
            "train",
            "--data",
            f"criteo:{bad}",
            "--output",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    assert status == 1
    line = _one_line_error(capsys)
    assert "bad.txt" in line and "line 31" in line


@pytest.mark.slow
def test_compare_tiny(tmp_path):
    status = main(
        [
            "compare",
            "--synthetic",
            "1400",
            "--interactions",
            "dot,adrec",
            "--seeds",
            "2",
            "--target-auc",
            "0.5",
            "--output",
            str(tmp_path),
            "--quiet",
            *TINY,
        ]
    )
    assert status == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["synthetic"] is True
    assert [row["variant"] for row in result["rows"]] == ["dot", "adrec"]
    for row in result["rows"]:
        assert row["seeds"] == 2
        assert 0.0 <= row["auc_mean"] <= 1.0
        assert row["auc_std"] >= 0.0
    table = (tmp_path / "results.md").read_text()
    assert "SYNTHETIC" in table and "| adrec |" in table
    assert "Target validation AUC 0.5000" in table
    assert "Mask diagnostics" in table
    assert (tmp_path / "mask_diagnostics.md").is_file()
    for name in ("convergence.png", "shift.png", "attention_maps.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.slow
def test_train_chooses_graph_or_xla_for_the_run_length(
    criteo_file, tmp_path, monkeypatch
):
    # A streamed file's length comes from the vocabulary fit's row count:
    # `adrec train` asks `fastest_jit_compile` about exactly its steps.
    from keras_adrec.training import build

    asked = []
    chooser = build.fastest_jit_compile

    def spy(interaction, batch_size, steps=None):
        asked.append((interaction, batch_size, steps))
        return chooser(interaction, batch_size, steps)

    monkeypatch.setattr(build, "fastest_jit_compile", spy)
    status = main(
        [
            "train",
            "--data",
            f"criteo:{criteo_file}",
            "--interaction",
            "dot",
            "--batch-size",
            "1000",
            "--output",
            str(tmp_path / "run"),
            "--quiet",
            *TINY,
        ]
    )
    assert status == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert asked == [("dot", 1000, metrics["steps"])]


def _train_args(data, tmp_path, *more):
    return [
        "train",
        "--data",
        data,
        "--output",
        str(tmp_path / "out"),
        "--quiet",
        *more,
    ]


def test_version(capsys):
    import keras_adrec

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"adrec {keras_adrec.__version__}\n"


def test_help_returns_the_status(capsys):
    assert main(["--help"]) == 0
    assert "--debug" in capsys.readouterr().out


def test_val_data_of_another_kind_exits_2(criteo_file, tmp_path, capsys):
    args = _train_args(
        f"criteo:{criteo_file}", tmp_path, "--val-data", f"avazu:{__file__}"
    )
    assert main(args) == 2
    line = _one_line_error(capsys)
    assert "--val-data is avazu data but --data is criteo" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG must be JSON"),
    ],
)
def test_multiworker_without_tf_config_exits_2(
    tf_config, message, criteo_file, tmp_path, monkeypatch, capsys
):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    args = _train_args(
        f"criteo:{criteo_file}", tmp_path, "--strategy", "multiworker"
    )
    assert main(args) == 2
    line = _one_line_error(capsys)
    assert line.startswith("adrec: error: --strategy multiworker: ")
    assert message in line
    assert not (tmp_path / "out").exists()


def _fail_in_train(monkeypatch, error):
    from keras_adrec.cli import train

    def run(args):
        raise error

    monkeypatch.setattr(train, "run", run)


@pytest.mark.parametrize(
    "error, what",
    [
        (RuntimeError("boom\nsecond line"), "RuntimeError: boom"),
        # A failure inside a traced tf.function: the last line says what.
        (
            TypeError("in user code:\n\n    File x.py\n\n    bad dtype\n"),
            "TypeError: bad dtype",
        ),
        (
            OSError(30, "Read-only file system", "run"),
            "OSError: [Errno 30] Read-only file system: 'run'",
        ),
    ],
)
def test_unexpected_error_is_one_line(
    error, what, tmp_path, monkeypatch, capsys
):
    _fail_in_train(monkeypatch, error)
    assert main(_train_args("criteo:x", tmp_path)) == 1
    assert _one_line_error(capsys) == (
        f"adrec: error: {what} (run with --debug for the traceback)"
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_prints_the_traceback(where, tmp_path, monkeypatch, capsys):
    _fail_in_train(monkeypatch, RuntimeError("boom"))
    args = _train_args("criteo:x", tmp_path)
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "raise error" in err
    assert err.strip().splitlines()[-1] == "adrec: error: RuntimeError: boom"


def test_interrupt_is_one_line(tmp_path, monkeypatch, capsys):
    _fail_in_train(monkeypatch, KeyboardInterrupt())
    assert main(_train_args("criteo:x", tmp_path)) == 130
    assert _one_line_error(capsys) == "adrec: interrupted"


def test_in_process_main_on_another_backend_exits_2(
    criteo_file, tmp_path, monkeypatch, capsys
):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    assert main(_train_args(f"criteo:{criteo_file}", tmp_path)) == 2
    line = _one_line_error(capsys)
    assert "adrec runs on TensorFlow" in line and "jax" in line
    assert "KERAS_BACKEND=tensorflow" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_console_script_trains_on_tensorflow_quietly(criteo_file, tmp_path):
    """The installed `adrec` under a user's `KERAS_BACKEND=jax` and no
    `TF_CPP_MIN_LOG_LEVEL`, on a machine without a GPU: it switches itself
    to TensorFlow, and none of TensorFlow's native CUDA or rendezvous
    notices reach stderr."""
    adrec = shutil.which("adrec") or pytest.skip("`adrec` is not on PATH")
    result = subprocess.run(
        [
            adrec,
            *_train_args(f"criteo:{criteo_file}", tmp_path),
            "--interaction",
            "dot",
            "--batch-size",
            "1000",
            *TINY,
        ],
        capture_output=True,
        text=True,
        env=_user_env(KERAS_BACKEND="jax"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "model.keras").is_file()
    noise = result.stderr.lower()
    for text in ("cuda", "cuinit", "rendezvous", "traceback", "absl"):
        assert text not in noise, result.stderr


@pytest.mark.slow
def test_python_m_data_error_is_exactly_one_line(tmp_path):
    """`python -m keras_adrec.cli` with malformed data and a user's
    environment: stderr is the reader's one line, without TensorFlow's
    "Local rendezvous is aborting" block before it."""
    bad = tmp_path / "bad.txt"
    good = "0\t" + "\t".join(["1"] * 13) + "\t" + "\t".join(["0a0b0c0d"] * 26)
    bad.write_text("\n".join([good] * 30 + ["2" + good[1:]] + [good] * 30))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_adrec.cli",
            *_train_args(f"criteo:{bad}", tmp_path),
        ],
        capture_output=True,
        text=True,
        env=_user_env(),
        timeout=600,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "adrec: data error: "
        f"{bad}, line 31, column label: expected 0 or 1, found `2`"
    ]
