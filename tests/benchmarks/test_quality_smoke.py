"""Smoke test: the quality benchmark runs end to end, tiny."""

import json

import pytest

from benchmarks import quality
from tests.samples import shared_data_file


def run_quality(tmp_path, *extra):
    argv = ["--smoke", *extra, "--output-dir", str(tmp_path)]
    assert quality.main(argv) == 0
    with open(tmp_path / "quality.json") as f:
        report = json.load(f)
    markdown = (tmp_path / "quality.md").read_text()
    return report, markdown


def check_header(report, tmp_path):
    assert report["command"].startswith("python -m benchmarks.quality --smoke")
    assert report["command"].endswith(f"--output-dir {tmp_path}")
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["cpu_model"]
    assert len(report["machine"]["load_average_at_start"]) == 3
    assert len(report["machine"]["load_average_at_end"]) == 3
    assert set(report["versions"]) >= {"tensorflow", "keras", "keras_adrec"}
    assert report["settings"]["smoke"] is True


@pytest.mark.slow
def test_quality_smoke_on_synthetic_data(tmp_path):
    report, markdown = run_quality(tmp_path)
    check_header(report, tmp_path)
    (dataset,) = report["datasets"]
    assert dataset["name"] == "synthetic" and dataset["synthetic"] is True
    assert "SYNTHETIC" in dataset["label"]
    assert [r["variant"] for r in dataset["rows"]] == ["dot", "adrec"]
    for row in dataset["rows"]:
        assert row["seeds"] == 1 and len(row["aucs"]) == 1
        assert 0.0 <= row["auc_mean"] <= 1.0
        assert row["logloss_mean"] > 0.0
    assert len(report["runs"]) == 2
    assert "## synthetic (RM1) — SYNTHETIC" in markdown
    assert "val AUC (mean ± sample std (ddof=1) over 1 seed)" in markdown
    assert "| dot | DLRM pairwise dot products |" in markdown
    adrec = "| adrec | Ad-Rec, per-head masks (the preset's rule and warm-up) |"
    assert adrec in markdown


@pytest.mark.slow
@pytest.mark.skipif(
    shared_data_file("taobao/UserBehavior_head84k.csv") is None,
    reason="the Taobao sample (research-only) is not in the shared data dir",
)
def test_quality_smoke_on_taobao_sample(tmp_path):
    report, markdown = run_quality(
        tmp_path, "--datasets", "taobao", "--variants", "adrec-noln"
    )
    (dataset,) = report["datasets"]
    assert dataset["name"] == "taobao" and dataset["synthetic"] is False
    assert dataset["preset"] == "rm4"
    assert dataset["train_rows"] > 0 and dataset["val_rows"] > 0
    (row,) = dataset["rows"]
    assert row["variant"] == "adrec-noln"
    assert 0.0 <= row["auc_mean"] <= 1.0
    assert "## taobao (RM4)" in markdown
