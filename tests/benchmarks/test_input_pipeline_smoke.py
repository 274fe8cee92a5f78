"""Smoke test: the input pipeline benchmark runs end to end, tiny."""

import json
import os
import subprocess
import sys

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    "benchmarks",
    "input_pipeline.py",
)


def test_input_pipeline_benchmark_writes_reports(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--rows",
            "1500",
            "--batch-sizes",
            "256",
            "--skip-real",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    with open(tmp_path / "input_pipeline.json") as f:
        report = json.load(f)
    assert report["synthetic_data"]["synthetic"] is True
    assert report["command"].endswith(f"--output-dir {tmp_path}")
    assert report["machine"]["nproc"] >= 1
    assert set(report["versions"]) >= {"tensorflow", "keras", "pyarrow"}
    pipelines = {r["pipeline"] for r in report["results"]}
    assert {
        "criteo_dataset (TSV)",
        "criteo_dataset + FeaturePreprocessor",
        "parquet_dataset",
        "parquet_dataset + FeaturePreprocessor",
        "pyarrow.csv.read_csv (1 thread)",
    } <= pipelines
    for record in report["results"]:
        assert record["data"] == "synthetic-criteo"
        assert record["rows"] >= 1500
        assert record["rows_per_s"] > 0
    markdown = (tmp_path / "input_pipeline.md").read_text()
    assert "SYNTHETIC" in markdown
    assert "| criteo_dataset (TSV) | 256 | 1,500 |" in markdown.replace(
        "synthetic-criteo | ", ""
    )
