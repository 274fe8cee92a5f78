"""Smoke test: the input pipeline benchmark runs end to end, tiny."""

import json

from benchmarks import input_pipeline


def test_input_pipeline_benchmark_writes_reports(tmp_path):
    argv = ["--rows", "1500", "--batch-sizes", "256", "--skip-real"]
    argv += ["--output-dir", str(tmp_path)]
    assert input_pipeline.main(argv) == 0
    with open(tmp_path / "input_pipeline.json") as f:
        report = json.load(f)
    assert report["synthetic_data"]["synthetic"] is True
    assert report["command"] == (
        "python -m benchmarks.input_pipeline --rows 1500 --batch-sizes 256 "
        f"--skip-real --output-dir {tmp_path}"
    )
    assert report["real_data"] is None
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
