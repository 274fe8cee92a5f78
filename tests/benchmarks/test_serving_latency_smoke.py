"""Smoke test: the serving latency benchmark runs end to end, tiny."""

import json

import pytest

from benchmarks import serving_latency


@pytest.mark.slow
def test_serving_latency_benchmark_writes_reports(tmp_path):
    argv = ["--smoke", "--calls", "12", "--output-dir", str(tmp_path)]
    assert serving_latency.main(argv) == 0
    with open(tmp_path / "serving_latency.json") as f:
        report = json.load(f)
    assert report["command"] == (
        "python -m benchmarks.serving_latency --smoke --calls 12 "
        f"--output-dir {tmp_path}"
    )
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["cpu_model"]
    assert set(report["versions"]) >= {"tensorflow", "keras", "keras_adrec"}
    assert report["settings"]["smoke"] is True
    assert report["model"]["parameters"] > 0
    assert 0.0 <= report["model"]["val_auc"] <= 1.0
    measured = {(r["signature"], r["batch"]) for r in report["results"]}
    paths = [
        "serving_default",
        "serve_examples",
        "serving_default (XLA)",
        "serving_default (Session)",
        "serving_default (Session, 1 thread)",
        "serving_default (XLA, Session)",
        "serving_default (XLA, Session, 1 thread)",
        "Keras predict_on_batch",
        "ONNX Runtime",
    ]
    callers = serving_latency.CALLERS
    if callers > 1:
        paths.append(
            f"serving_default (XLA, Session, 1 thread, {callers} callers)"
        )
    assert measured == {(p, b) for p in paths for b in (1, 1024)}
    for record in report["results"]:
        calls = 3 if record["batch"] == 1024 else 12
        if record["signature"].endswith("callers)"):
            # Every caller sends every call.
            calls *= callers
        assert record["calls"] == calls
        assert 0 < record["p50_ms"] <= record["p99_ms"]
        assert record["rows_per_s"] > 0
        assert record["cpu_ms_per_call"] >= 0
        # Every path computes the same model on the same rows.
        assert record["max_abs_difference"] <= 1e-5, record
    assert {"onnxruntime", "tensorflow"} <= set(report["versions"])
    assert report["machine"]["load_average_at_start"]
    markdown = (tmp_path / "serving_latency.md").read_text()
    assert "| serving_default | raw tensors | 1 | 12 |" in markdown
    assert "| serve_examples | tf.Example | 1024 | 3 |" in markdown
    assert "| ONNX Runtime | ids | 1 | 12 |" in markdown
    assert "| serving_default (Session) | raw arrays | 1 | 12 |" in markdown


def test_concurrent_callers_each_send_every_call_and_errors_surface():
    sent = []
    seconds, cpu, wall = serving_latency.time_concurrent(
        lambda x: sent.append(x), [(1,), (2,), (3,)], 0, callers=2
    )
    # One untimed warm-up call, then each caller sends all three.
    assert sorted(sent) == [1, 1, 1, 2, 2, 3, 3]
    assert len(seconds) == 6
    assert wall > 0 and cpu >= 0

    def fails_on_two(x):
        if x == 2:
            raise ValueError("request 2 failed")

    with pytest.raises(ValueError, match="request 2 failed"):
        serving_latency.time_concurrent(fails_on_two, [(1,), (2,)], 0)
