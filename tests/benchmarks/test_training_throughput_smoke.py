"""Smoke test: the training throughput benchmark runs end to end, tiny."""

import json

import pytest

from benchmarks import training_throughput


@pytest.mark.slow
def test_training_throughput_benchmark_writes_reports(tmp_path):
    argv = ["--smoke", "--output-dir", str(tmp_path)]
    assert training_throughput.main(argv) == 0
    with open(tmp_path / "training_throughput.json") as f:
        report = json.load(f)
    assert report["command"] == (
        "python -m benchmarks.training_throughput --smoke --output-dir "
        f"{tmp_path}"
    )
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["cpu_model"]
    assert set(report["versions"]) >= {"tensorflow", "keras", "keras_rs"}
    assert report["synthetic"] is True
    assert report["settings"]["smoke"] is True
    measured = {(r["interaction"], r["jit_compile"]) for r in report["results"]}
    assert measured == {
        ("dot", False),
        ("adrec", False),
        ("keras-mha", False),
        ("keras-rs-dcn", False),
        ("dot", True),
    }
    for record in report["results"]:
        assert record["batch_size"] == 32
        assert record["median_step_ms"] > 0
        expected = 32 / record["median_step_ms"] * 1e3
        assert abs(record["samples_per_sec"] - expected) < 1e-6 * expected
        (run,) = record["runs"]
        assert run["measured_steps"] == 3 and run["steps_run"] == 5
    # The reference layers have the expected weights. The MHA block has
    # the Ad-Rec block's weight shapes; two low-rank FeatureCross layers on
    # the 27 x 16 = 432 flattened vectors hold 432x128 + 128x432 kernels and
    # a 432 bias each, and the top MLP's first layer sees 432 inputs instead
    # of dot's 27 * 26 / 2 = 351 (512 units).
    params = {r["interaction"]: r["parameters"] for r in report["results"]}
    # The RM1 preset has no threshold warm-up, so Ad-Rec holds no step
    # counter either: the same weights as the Keras MHA block.
    assert params["adrec"] == params["keras-mha"]
    cross = 2 * (432 * 128 + 128 * 432 + 432) + (432 - 351) * 512
    assert params["keras-rs-dcn"] - params["dot"] == cross
    ratios = {(r["numerator"], r["denominator"]) for r in report["ratios"]}
    assert ("adrec", "dot") in ratios
    (xla,) = report["xla_ratios"]
    assert xla["interaction"] == "dot" and xla["graph_over_xla"] > 0
    for record in report["results"]:
        assert record["train_flop_per_sample"] > 0
    # Ad-Rec's model does more arithmetic per sample than DLRM's.
    flop = {
        r["interaction"]: r["train_flop_per_sample"] for r in report["results"]
    }
    assert flop["adrec"] > flop["dot"]
    assert report["matmul_peak_gflops"] > 0
    profiled = [(p["interaction"], p["batch_size"]) for p in report["profiles"]]
    assert profiled == [("adrec", 32), ("dot", 32)]
    parts = {
        part["part"]: part["ms"]
        for part in report["profiles"][0]["profile"]["parts"]
    }
    for part in (
        "block: FFN",
        "block: scores, mask, softmax, weights x V",
        "top MLP",
        "embedding lookup",
    ):
        assert parts[part] > 0, part
    dot_parts = {
        part["part"] for part in report["profiles"][1]["profile"]["parts"]
    }
    assert not any(part.startswith("block:") for part in dot_parts)
    markdown = (tmp_path / "training_throughput.md").read_text()
    assert "## Where a step's op time goes: adrec, batch 32, graph" in markdown
    assert "| adrec / dot | 32 | graph |" in markdown
    assert "| dot | 32 | XLA |" in markdown
