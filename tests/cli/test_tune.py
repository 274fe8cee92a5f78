"""`adrec tune`: options, usage errors, and a whole job with its export."""

import json

import numpy as np
import pytest

from keras_adrec.cli import UsageError
from keras_adrec.cli.arguments import ArgumentParser as _Parser
from keras_adrec.cli.tune import add_parser as add_tune_parser
from keras_adrec.cli.tune import parse_fixed
from keras_adrec.cli.tune import parse_ranges
from keras_adrec.cli.tune import run as run_tune
from keras_adrec.data import make_dataset
from keras_adrec.data import preprocess
from keras_adrec.data.synthetic import SyntheticCriteo
from keras_adrec.training import ModelDirectory
from keras_adrec.training.run_folder import read_marker

TINY = [
    "--set",
    "bottom_units=[8]",
    "--set",
    "top_units=[8]",
    "--set",
    "batch_size=400",
]


def _args(argv):
    parser = _Parser(prog="adrec")
    add_tune_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["tune", *argv])


@pytest.fixture(scope="module")
def tsv(tmp_path_factory):
    # 2,000 synthetic Criteo-format rows; the last 400 validate.
    directory = tmp_path_factory.mktemp("synthetic")
    (path,) = SyntheticCriteo(rows_per_day=2000, num_days=1).write_tsv(
        directory
    )
    return path


def test_parse_fix_and_range():
    assert parse_fixed(
        [
            "num_heads=2",
            "activation=gelu",
            "norm_first=false",
            "mask_thresholds=geometric:5",
            "dropout=0.05",
        ]
    ) == {
        "num_heads": 2,
        "activation": "gelu",
        "norm_first": False,
        "mask_thresholds": "geometric:5",
        "dropout": 0.05,
    }
    assert parse_fixed(["mask_thresholds=[0.1, 0.01]"]) == {
        "mask_thresholds": [0.1, 0.01]
    }
    assert parse_ranges(
        [
            "dropout=0.01:0.1",
            "num_heads=[1, 2]",
            'mask_thresholds=["geometric", "fixed:0.01", null]',
        ]
    ) == {
        "dropout": (0.01, 0.1),
        "num_heads": [1, 2],
        "mask_thresholds": ["geometric", "fixed:0.01", None],
    }


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--fix", "heads=2"], "Unknown hyperparameter"),
        (["--fix", "num_heads"], "KEY=VALUE"),
        (["--fix", "num_heads=2", "--fix", "num_heads=4"], "twice"),
        (["--range", "dropout=low:high"], "LO:HI"),
        (["--range", "activation=relu:gelu"], "LO:HI"),
        (["--range", "num_heads=[1,"], "JSON list"),
        (["--range", "num_heads=3:3"], "leaves none"),
        (["--fix", "num_heads=3"], "must divide"),
        (["--preset", "rm4"], "SequentialHyperModel"),
        (["--preset", "rm9"], "Unknown preset"),
        (["--set", "bogus=1"], "Unknown preset field"),
        (["--max-trials", "0"], "--max-trials"),
        (["--epochs", "0"], "--epochs"),
        (["--val-fraction", "1.5"], "--val-fraction"),
        (["--tuner", "grid"], "invalid choice"),
    ],
)
def test_usage_errors(tsv, tmp_path, extra, message):
    argv = ["--data", f"criteo:{tsv}", "--output", str(tmp_path), *extra]
    with pytest.raises(UsageError, match=message):
        run_tune(_args(argv))


def test_missing_data_is_a_usage_error(tmp_path):
    args = _args(
        ["--data", f"criteo:{tmp_path}/absent.txt", "--output", str(tmp_path)]
    )
    with pytest.raises(UsageError, match="does not exist"):
        run_tune(args)


@pytest.mark.slow
def test_tune_job_exports_the_best_model(tsv, tmp_path, capsys):
    output = tmp_path / "tune"
    argv = [
        "--data",
        f"criteo:{tsv}",
        "--preset",
        "rm1",
        "--tuner",
        "random",
        "--max-trials",
        "1",
        "--epochs",
        "1",
        "--output",
        str(output),
        "--fix",
        "num_layers=1",
        "--range",
        "dropout=0.01:0.1",
        "--quiet",
        *TINY,
    ]
    result = run_tune(_args(argv))
    assert "Trials: 1 completed of 1" in capsys.readouterr().out
    best = json.loads((output / "best_hyperparameters.json").read_text())
    assert best["hyperparameters"]["num_layers"] == 1
    assert 0.01 <= best["hyperparameters"]["dropout"] <= 0.1
    for name in ("trials.md", "trials.csv", "trials.json"):
        assert (output / name).is_file()

    # The best model directory has the `adrec train` layout.
    model, preprocessor, config = ModelDirectory(
        output / "best_model"
    ).load_ranking()
    assert config["data"]["kind"] == "criteo"
    assert config["preset"]["num_layers"] == 1
    assert config["preset"]["bottom_units"] == [8]
    assert config["tuning"]["trial"] == best["trial"]
    raw_val = make_dataset(
        "criteo", [tsv], 400, split="val", val_fraction=0.2, split_mode="time"
    )
    ((raw, labels),) = list(raw_val)
    ((features, _),) = list(preprocess(raw_val, preprocessor))
    assert labels.shape[0] == 400
    keras_scores = model.predict(features, verbose=0)
    # The saved model scores the validation rows at the trial's AUC.
    labels = labels.numpy().reshape(-1).astype(bool)
    pos = keras_scores.reshape(-1)[labels]
    neg = keras_scores.reshape(-1)[~labels]
    auc = ((pos[:, None] > neg).sum() + 0.5 * (pos[:, None] == neg).sum()) / (
        pos.size * neg.size
    )
    assert auc == pytest.approx(best["val_auc"], abs=1e-9)
    metrics = json.loads((output / "best_model" / "metrics.json").read_text())
    assert metrics["auc"] == pytest.approx(best["val_auc"], abs=1e-9)

    # The serving export takes raw rows and gives the same probabilities.
    if not result["paths"].get("serving"):
        pytest.skip("keras_adrec.export.export_for_serving is not available")
    import tensorflow as tf

    serving = output / "serving" / "1"
    assert result["paths"]["serving"] == str(serving)
    loaded = tf.saved_model.load(str(serving))
    served = loaded.signatures["serving_default"](
        dense=raw["dense"], categorical=raw["categorical"]
    )["probability"]
    np.testing.assert_allclose(served.numpy(), keras_scores, atol=1e-5)

    # Rerunning the same command resumes: nothing new to train.
    run_tune(_args([*argv, "--no-export"]))
    assert "Trials: 1 completed of 1" in capsys.readouterr().out
    # Both folders carry adrec's run marker (keras_adrec.training.run_folder).
    assert read_marker(output)["kind"] == "tune"
    assert read_marker(output)["state"] == "finished"
    assert read_marker(output / "best_model")["kind"] == "train"
    assert read_marker(serving)["kind"] == "export"
    # Other settings in the same output directory are refused.
    changed = [a if a != "num_layers=1" else "num_layers=2" for a in argv]
    with pytest.raises(UsageError, match="different settings"):
        run_tune(_args(changed))
