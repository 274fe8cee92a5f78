"""The throughput benchmark's options and goal lines, without training."""

import pytest

from benchmarks import training_throughput as tt


def test_cpu_bfloat16_detection_reads_the_flags(tmp_path):
    with_flag = tmp_path / "with"
    with_flag.write_text("flags\t\t: fpu avx512f avx512_bf16 sha_ni\n")
    without = tmp_path / "without"
    without.write_text("flags\t\t: fpu avx512f avx2\n")
    assert tt.cpu_has_bfloat16(str(with_flag))
    assert not tt.cpu_has_bfloat16(str(without))
    assert not tt.cpu_has_bfloat16(str(tmp_path / "absent"))


def test_mixed_bfloat16_rows_are_separate_configurations(monkeypatch):
    monkeypatch.setattr(tt, "cpu_has_bfloat16", lambda: True)
    args = tt.parse_args(
        [
            "--interactions",
            "dot,adrec",
            "--batch-sizes",
            "1024",
            "--jit",
            "off",
            "--mixed-bfloat16",
            "adrec",
        ]
    )
    assert args.configs == [
        (1024, False, "dot", "float32"),
        (1024, False, "adrec", "float32"),
        (1024, False, "adrec", "mixed_bfloat16"),
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--mixed-bfloat16", "adrec"], "avx512_bf16"),
        (["--mixed-bfloat16", "nope"], "unknown interaction"),
        (["--threads", "2"], "INTRA,INTER"),
        (["--threads", "0,1"], "INTRA,INTER"),
    ],
)
def test_bad_options_exit_with_usage_errors(argv, message, monkeypatch, capsys):
    monkeypatch.setattr(tt, "cpu_has_bfloat16", lambda: False)
    with pytest.raises(SystemExit) as raised:
        tt.parse_args(argv)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def _record(name, jit, ms, precision="float32", batch=1024):
    return {
        "interaction": name,
        "batch_size": batch,
        "jit_compile": jit,
        "precision": precision,
        "median_step_ms": ms,
        "cpu_ms_per_step": 2 * ms,
        "samples_per_sec": batch / ms * 1e3,
    }


def test_goals_take_each_model_in_its_faster_mode():
    records = [
        _record("adrec", False, 40.0),
        _record("adrec", True, 32.0),
        _record("adrec", True, 10.0, precision="mixed_bfloat16"),
        _record("dcnv2", False, 26.0),
        _record("dcnv2", True, 30.0),
        _record("dot", False, 24.0),
        _record("dot", True, 19.0),
    ]
    lines = tt.best_mode_goals(records)
    assert lines == [
        "Ad-Rec (XLA) / dcnv2 (graph) step at batch 1024, each in its "
        "faster mode: 1.23; goal <= 1.3: met.",
        "Ad-Rec (XLA) / dot (XLA) step at batch 1024, each in its faster "
        "mode: 1.68; goal <= 1.6: not met.",
        "Ad-Rec at batch 1024 (XLA): 32,000 samples/s; goal >= 30,000: met.",
    ]
    rows = tt.precision_ratio_rows(records)
    assert rows == [["adrec", 1024, "XLA", "0.31", "0.31"]]
    # Ratios between interactions use the float32 rows only.
    pairs, _ = tt.ratios(records)
    (adrec_dot_xla,) = [
        r
        for r in pairs
        if (r["numerator"], r["denominator"], r["jit_compile"])
        == ("adrec", "dot", True)
    ]
    assert adrec_dot_xla["step_ratio"] == pytest.approx(32.0 / 19.0)


def test_anchor_goal_says_when_it_compares_across_machines():
    records = [_record("adrec", True, 16.0, batch=128)]
    same = tt.goals(records, [], peak_gflops=189.0)
    slower = tt.goals(records, [], peak_gflops=68.0)
    assert same[0].startswith("Ad-Rec batch 128 XLA: 8,000 samples/s = 1.84x")
    assert "about 190 GFLOP/s" in same[0]
    assert "across machines" not in same[0]
    assert "this machine's: 68, so the ratio compares across machines" in (
        slower[0]
    )
    assert "across machines" not in tt.goals(records, [])[0]
