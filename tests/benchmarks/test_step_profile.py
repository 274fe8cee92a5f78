"""The step profile: HLO metadata, grouping, tables and a tiny run."""

import json

import pytest

from benchmarks import step_profile

_TOP = "gradient_tape/rm1_adrec_1/top_mlp_1/dense_0_1/MatMul/MatMul"
_NORM = "rm1_adrec_1/interaction_1/block_0_1/ffn_norm/mul"
HLO = "\n".join(
    [
        "HloModule a_inference_train_step",
        "",
        "%fused_computation.3 (param_0: f32[4,16]) -> f32[4,16] {",
        "  %param_0 = f32[4,16]{1,0} parameter(0)",
        "  ROOT %multiply.1 = f32[4,16]{1,0} multiply(%param_0, %param_0), "
        f'metadata={{op_type="Mul" op_name="{_NORM}"}}',
        "}",
        "",
        "ENTRY %main (arg0: f32[4,16]) -> (f32[4,16], f32[]) {",
        "  %arg0 = f32[4,16]{1,0} parameter(0)",
        "  %MatMul.78 = f32[4,16]{1,0} custom-call(%arg0, %arg0), "
        'custom_call_target="__onednn$matmul", '
        f'metadata={{op_type="MatMul" op_name="{_TOP}"}}',
        "  %loop_fusion.3 = f32[4,16]{1,0} fusion(%MatMul.78), kind=kLoop, "
        f'calls=%fused_computation.3, metadata={{op_type="Mul" '
        f'op_name="{_NORM}"}}',
        "  %tuple_fusion = (f32[4,16]{1,0}, f32[]) fusion(%loop_fusion.3), "
        "kind=kInput, calls=%fused_computation.3",
        "  ROOT %tuple.1 = (f32[4,16]{1,0}, f32[]) "
        "tuple(%loop_fusion.3, %tuple_fusion)",
        "}",
    ]
)


def test_hlo_instructions_read_type_kind_and_op_name():
    found = step_profile.hlo_instructions(HLO)
    assert found["MatMul.78"] == ("MatMul/custom-call", _TOP)
    assert found["loop_fusion.3"] == ("Mul/fusion kLoop", _NORM)
    # No metadata: no op name; a tuple-typed result still parses.
    assert found["tuple_fusion"] == ("fusion kInput", "")


def test_xla_events_are_named_by_their_tensorflow_op(monkeypatch):
    instructions = step_profile.hlo_instructions(HLO)
    # Only events named like an instruction count, not the runtime's.
    events = [("MatMul.78", 2.0), ("ThunkExecutor::Execute", 9.0)]
    monkeypatch.setattr(step_profile, "_events", lambda space: iter(events))
    (event,) = step_profile.xla_op_events(None, instructions)
    assert event == (f"{_TOP} [MatMul.78]", "MatMul/custom-call", 2.0)


def test_summarise_groups_by_part_and_lists_the_largest_ops():
    events = [
        ("rm1_adrec_1/top_mlp_1/dense_0_1/MatMul", "MatMul", 6.0),
        ("rm1_adrec_1/top_mlp_1/dense_0_1/MatMul", "MatMul", 6.0),
        ("gradient_tape/m/block_0_1/ffn_norm/mul", "Mul", 4.0),
        ("m/block_0_1/attention_1/Softmax", "Softmax", 2.0),
        ("loss/Sum", "Sum", 2.0),
    ]
    result = step_profile.summarise(events, steps=2, mode="graph")
    assert result["total_ms"] == pytest.approx(10.0)
    assert [op["op"] for op in result["ops"]][:2] == [
        "rm1_adrec_1/top_mlp_1/dense_0_1/MatMul",
        "gradient_tape/m/block_0_1/ffn_norm/mul",
    ]
    assert result["ops"][0]["share"] == pytest.approx(0.6)
    parts = {p["part"]: p["ms"] for p in result["parts"]}
    assert parts == {
        "top MLP": 6.0,
        "block: layer norms": 2.0,
        "block: scores, mask, softmax, weights x V": 1.0,
        step_profile.OTHER: 1.0,
    }
    rows = step_profile.top_op_rows(result, count=1)
    assert rows == [
        [
            "`rm1_adrec_1/top_mlp_1/dense_0_1/MatMul`",
            "MatMul",
            "top MLP",
            "6.00",
            "60.0%",
        ]
    ]


def test_part_comparison_gives_adrecs_excess():
    def profile(name, ms):
        result = step_profile.summarise(
            [(f"m/{name}/top_mlp_1/x", "MatMul", ms)], 1, "graph"
        )
        return {"interaction": name, **result}

    columns, rows = step_profile.part_comparison_rows(
        [profile("dot", 1.0), profile("adrec", 3.0)], "graph"
    )
    assert [c for c, _ in columns] == ["part", "dot", "adrec", "adrec − dot"]
    assert rows[-1] == ["total", "1.0", "3.0", "+2.0"]


def test_bad_modes_exit_with_usage_error(capsys):
    with pytest.raises(SystemExit) as raised:
        step_profile.parse_args(["--modes", "eager"])
    assert raised.value.code == 2
    assert "--modes" in capsys.readouterr().err


@pytest.mark.slow
def test_step_profile_writes_reports(tmp_path):
    argv = [
        "--interactions",
        "dot,adrec",
        "--batch-size",
        "32",
        "--steps",
        "2",
        "--warmup-steps",
        "1",
        "--output-dir",
        str(tmp_path),
    ]
    assert step_profile.main(argv) == 0
    report = json.loads((tmp_path / "step_profile.json").read_text())
    profiled = [(p["interaction"], p["mode"]) for p in report["profiles"]]
    assert profiled == [
        ("dot", "graph"),
        ("adrec", "graph"),
        ("dot", "xla"),
        ("adrec", "xla"),
    ]
    for profile in report["profiles"]:
        assert profile["total_ms"] > 0
        assert sum(op["share"] for op in profile["ops"]) == pytest.approx(1)
    parts = {
        mode: {p["part"] for p in report["profiles"][i]["parts"]}
        for i, mode in ((1, "graph"), (3, "xla"))
    }
    for mode in ("graph", "xla"):
        assert "block: FFN" in parts[mode], mode
        assert "top MLP" in parts[mode], mode
    markdown = (tmp_path / "step_profile.md").read_text()
    assert "## Op ms per step by model part, xla" in markdown
    assert "## adrec, xla: the ten largest ops" in markdown
    assert "| part | dot | adrec | adrec − dot |" in markdown
