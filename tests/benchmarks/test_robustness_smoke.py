"""Smoke test: the robustness benchmark runs end to end, tiny."""

import json

import pytest

from benchmarks import robustness
from tests.samples import shared_data_file

TINY = ["--datasets", "synthetic-hard", "--synthetic-rows-per-day", "100"]


def run(tmp_path, *extra, name="robustness"):
    # A later `--datasets` in `extra` replaces TINY's (argparse: last wins).
    argv = [*TINY, "--seeds", "1", *extra, "--output-dir", str(tmp_path)]
    assert robustness.main(argv) == 0
    with open(tmp_path / f"{name}.json") as f:
        report = json.load(f)
    return report, (tmp_path / f"{name}.md").read_text()


def runs_lines(tmp_path, name="robustness"):
    return (tmp_path / f"{name}.runs.jsonl").read_text().splitlines()


@pytest.mark.slow
def test_two_interactions_one_seed(tmp_path):
    report, markdown = run(tmp_path, "--interactions", "dot,adrec")
    assert report["command"].startswith("python -m benchmarks.robustness")
    assert len(report["machine"]["load_average_at_start"]) == 3
    assert {"tensorflow", "keras", "keras_adrec"} <= set(report["versions"])
    assert [r["interaction"] for r in report["best"]] == ["dot", "adrec"]
    for row in report["best"]:
        assert row["seeds"] == [0]
        assert 0.0 <= row["same_auc_mean"] <= 1.0
        assert 0.0 <= row["later_auc_mean"] <= 1.0
        assert row["gap_mean"] == pytest.approx(
            row["same_auc_mean"] - row["later_auc_mean"]
        )
        assert row["worst_seed"] == 0
        assert row["worst_later_auc"] == row["later_auc_mean"]
    info = report["datasets"]["synthetic-hard"]
    assert info["sets"]["train"]["rows"] == 500
    assert info["sets"]["same"]["rows"] == 50
    assert info["sets"]["later"]["rows"] == 100
    assert markdown.startswith("# Robustness under shift\n")
    assert "## synthetic-hard — SYNTHETIC" in markdown
    assert "later-period AUC (mean ± sample std (ddof=1) over 1 seed)" in (
        markdown
    )
    # Resumable: the same command again trains nothing new.
    before = runs_lines(tmp_path)
    again, _ = run(tmp_path, "--interactions", "dot,adrec")
    after = runs_lines(tmp_path)
    assert [json.loads(x)["type"] for x in after[len(before) :]] == ["dataset"]
    assert again["best"] == report["best"]


@pytest.mark.slow
def test_lr_grid_shows_each_at_its_best_same_period_auc(tmp_path):
    report, markdown = run(
        tmp_path, "--interactions", "dot", "--lr-grid", "0.3,0.01"
    )
    assert sorted(r["learning_rate"] for r in report["grid"]) == [0.01, 0.3]
    (best,) = report["best"]
    assert best["same_auc_mean"] == max(
        r["same_auc_mean"] for r in report["grid"]
    )
    assert "Every rate of the grid" in markdown


@pytest.mark.slow
def test_merge_joins_reports_run_side_by_side(tmp_path):
    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    run(a, "--interactions", "dot")
    run(b, "--interactions", "fm", "--set", "dropout=0.0")
    argv = [
        "--merge",
        f"{a}/robustness.runs.jsonl,{b}/robustness.runs.jsonl",
        "--output-dir",
        str(merged),
        "--title",
        "Merged PILOT",
    ]
    assert robustness.main(argv) == 0
    report = json.loads((merged / "robustness.json").read_text())
    markdown = (merged / "robustness.md").read_text()
    assert markdown.startswith("# Merged PILOT\n")
    assert sorted(r["interaction"] for r in report["best"]) == ["dot", "fm"]
    overrides = {r["interaction"]: r["overrides"] for r in report["runs"]}
    assert overrides == {"dot": {}, "fm": {"dropout": 0.0}}
    assert report["settings"]["seeds"] == [0]
    assert report["settings"]["datasets"] == ["synthetic-hard"]


def test_aggregate_sample_std_worst_seed_and_gap():
    runs = [
        {
            "dataset": "d",
            "interaction": "dot",
            "learning_rate": 0.1,
            "seed": seed,
            "same_auc": same,
            "later_auc": later,
            "later_logloss": 0.5,
        }
        for seed, same, later in [
            (2, 0.70, 0.66),
            (0, 0.72, 0.70),
            (1, 0.74, 0.68),
        ]
    ]
    row = robustness.aggregate(runs)
    assert row["seeds"] == [0, 1, 2]
    assert row["same_auc_mean"] == pytest.approx(0.72)
    assert row["same_auc_std"] == pytest.approx(0.02)  # ddof=1
    assert row["later_auc_mean"] == pytest.approx(0.68)
    assert row["later_auc_std"] == pytest.approx(0.02)
    assert row["worst_seed"] == 2 and row["worst_later_auc"] == 0.66
    assert row["gap_mean"] == pytest.approx(0.04)
    assert row["later_aucs"] == [0.70, 0.68, 0.66]
    assert row["diverged"] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "no_such_field=1"], "--set"),
        (["--lr-grid", "0.1,-1"], "--lr-grid"),
        (["--datasets", "imagenet"], "--datasets"),
        (["--interactions", "mlp"], "--interactions"),
    ],
)
def test_bad_usage_exits_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        robustness.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(
    shared_data_file("criteo/later_days_2185.txt") is None
    or shared_data_file("criteo/train_head10k.txt") is None,
    reason="research-only Criteo samples not found (set ADREC_DATA_DIR)",
)
def test_criteo_split_of_the_real_samples():
    args = robustness.parse_args(["--datasets", "criteo"])
    split, reason = robustness.load_split("criteo", args)
    assert reason is None
    stats = split.stats()
    assert [stats[p]["rows"] for p in ("train", "same", "later")] == [
        8000,
        2000,
        2185,
    ]
    assert stats["later"]["oov_share"] > stats["same"]["oov_share"] > 0


@pytest.mark.slow
@pytest.mark.skipif(
    shared_data_file("taobao/UserBehavior_head84k.csv") is None,
    reason="research-only Taobao sample not found (set ADREC_DATA_DIR)",
)
def test_taobao_sequential_runs(tmp_path):
    report, markdown = run(
        tmp_path,
        "--datasets",
        "taobao",
        "--taobao-events",
        "8000",
        "--taobao-points-per-user",
        "2",
        "--interactions",
        "adrec",
    )
    (row,) = report["best"]
    assert row["dataset"] == "taobao" and row["interaction"] == "adrec"
    assert 0.0 <= row["same_auc_mean"] <= 1.0
    assert 0.0 <= row["later_auc_mean"] <= 1.0
    info = report["datasets"]["taobao"]
    assert info["preset"] == "rm4"
    assert info["sets"]["later"]["rows"] > 0
    assert "Preset RM4" in markdown


@pytest.mark.slow
def test_deterministic_runs_repeat_exactly_and_stay_apart(tmp_path, capsys):
    from tensorflow.python.framework import config

    try:
        first, markdown = run(
            tmp_path / "a", "--interactions", "adrec", "--deterministic"
        )
        second, _ = run(
            tmp_path / "b", "--interactions", "adrec", "--deterministic"
        )
    finally:
        # Process-wide: later tests in this worker must not inherit it.
        config.disable_op_determinism()
    assert (
        first["best"][0]["later_auc_mean"]
        == (second["best"][0]["later_auc_mean"])
    )
    assert first["runs"][0]["deterministic"] is True
    assert "TensorFlow op determinism: on." in markdown
    # The same output without the flag trains its own run beside it...
    plain, plain_markdown = run(tmp_path / "a", "--interactions", "adrec")
    assert len(plain["runs"]) == 1
    assert "deterministic" not in plain["runs"][0]
    assert "TensorFlow op determinism: off." in plain_markdown
    lines = [json.loads(x) for x in runs_lines(tmp_path / "a")]
    assert [
        bool(x.get("deterministic")) for x in lines if x["type"] == "run"
    ] == [
        True,
        False,
    ]
    # ...and a merge refuses to count one seed twice.
    runs_file = str(tmp_path / "a" / "robustness.runs.jsonl")
    merged = ["--merge", runs_file, "--output-dir", str(tmp_path / "m")]
    capsys.readouterr()
    assert robustness.main(merged) == 2
    assert "with and without --deterministic" in capsys.readouterr().err
