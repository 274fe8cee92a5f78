"""End-to-end tests of the `adrec` command (train, evaluate, compare)."""

import json
import subprocess
import sys

import pytest

from keras_adrec import paths
from keras_adrec.cli import main
from keras_adrec.data.synthetic import SyntheticCriteo

TINY = ["--set", "bottom_units=[32]", "--set", "top_units=[32]"]


@pytest.fixture(scope="module")
def criteo_file(tmp_path_factory):
    """The real Criteo sample if present, else a synthetic day file."""
    real = paths.shared_data_file("criteo/train_head10k.txt")
    if real is not None:
        return str(real)
    directory = tmp_path_factory.mktemp("synthetic")
    generator = SyntheticCriteo(rows_per_day=3000, num_days=1, seed=0)
    return generator.write_tsv(str(directory))[0]


def _adrec(*args):
    """Run the real console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "keras_adrec.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_train_then_evaluate(criteo_file, tmp_path):
    out = tmp_path / "run"
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
    for name in ("model.keras", "config.json", "curve.csv", "metrics.json"):
        assert (out / name).is_file(), name
    assert (out / "preprocessing").is_dir()
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("auc", "logloss", "accuracy", "steps", "steps_to_target"):
        assert key in metrics
    assert metrics["samples_per_sec"] > 0
    assert metrics["auc"] > 0.55
    curve = (out / "curve.csv").read_text().splitlines()
    assert curve[0].startswith("step,train_loss,val_auc")
    assert len(curve) >= 2

    result = _adrec(
        "evaluate", "--model", str(out), "--data", f"criteo:{criteo_file}"
    )
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(evaluated) >= {"auc", "logloss", "accuracy"}
    assert 0.5 < evaluated["auc"] <= 1.0


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
        ({"--data": "parquet:x"}, "Unknown data kind"),
        ({"--data": "criteo:/no/such/file"}, "does not exist"),
    ],
)
def test_invalid_usage_exits_2_in_one_line(change, message, tmp_path):
    options = {"--data": f"criteo:{__file__}", "--output": str(tmp_path)}
    options.update(change)
    result = _adrec("train", *[x for kv in options.items() for x in kv])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_data_exits_nonzero_with_reader_error(tmp_path):
    bad = tmp_path / "bad.txt"
    good = "0\t" + "\t".join(["1"] * 13) + "\t" + "\t".join(["0a0b0c0d"] * 26)
    bad.write_text("\n".join([good] * 30 + ["2" + good[1:]] + [good] * 30))
    result = _adrec(
        "train",
        "--data",
        f"criteo:{bad}",
        "--output",
        str(tmp_path / "out"),
        "--quiet",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "bad.txt" in result.stderr and "line 31" in result.stderr


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
    for name in ("convergence.png", "attention_maps.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
