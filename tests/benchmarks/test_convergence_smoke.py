"""Smoke test: the convergence benchmark runs end to end, tiny."""

import json

import pytest

from benchmarks import convergence


@pytest.mark.slow
def test_convergence_benchmark_writes_reports(tmp_path):
    assert convergence.main(["--smoke", "--output-dir", str(tmp_path)]) == 0
    with open(tmp_path / "convergence.json") as f:
        report = json.load(f)
    assert report["command"] == (
        f"python -m benchmarks.convergence --smoke --output-dir {tmp_path}"
    )
    assert report["machine"]["nproc"] >= 1
    assert set(report["versions"]) >= {"tensorflow", "keras", "keras_adrec"}
    assert report["synthetic"] is True and report["data"]["synthetic"] is True
    assert report["data"]["train_rows"] == 6 * 300
    assert report["data"]["val_rows"] == 300
    # The target is the fraction of the best pilot AUC.
    pilot = report["pilot"]["final_auc"]
    assert set(pilot) == {"dot", "adrec"}
    assert abs(report["target"]["auc"] - 0.99 * max(pilot.values())) < 1e-12
    target = report["target"]["auc"]
    for run in report["runs"]:
        steps = [p["step"] for p in run["curve"]]
        assert steps == sorted(steps) and steps[0] == 3
        seconds = [p["train_seconds"] for p in run["curve"]]
        assert seconds == sorted(seconds)
        if run["steps_to_target"] is None:
            assert run["steps"] == 15  # one epoch of 1,800 rows at 128
            assert max(p["val_auc"] for p in run["curve"]) < target
        else:
            # It stopped at the first evaluation at or above the target.
            reached = [p for p in run["curve"] if p["val_auc"] >= target]
            assert reached[0]["step"] == run["steps_to_target"]
            pilot_steps = report["settings"]["pilot_steps"]
            if run["seed"] == 0 and run["steps_to_target"] <= pilot_steps:
                # Its pilot had crossed the target: it trained the whole
                # pilot and read its steps to target off the curve.
                assert run["steps"] == pilot_steps
            else:
                assert run["steps"] == run["steps_to_target"]
    assert (tmp_path / "convergence.png").stat().st_size > 0
    markdown = (tmp_path / "convergence.md").read_text()
    assert "SYNTHETIC" in markdown
    assert "| interaction | reached | steps to target |" in markdown
