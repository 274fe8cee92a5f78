"""The sequential reports' bookkeeping: `--merge` and the TBSM comparison.

Both read reports other runs wrote, so they are tested on small hand-made
JSON files; the training runs themselves are benchmarks, not tests.
"""

import json

import pytest

from benchmarks import sequential_quality
from benchmarks.tbsm_reference import compare

MACHINE = {
    "nproc": 2,
    "cpu_model": "test CPU",
    "platform": "test",
    "load_average_at_start": [0.0, 0.0, 0.0],
    "load_average_at_end": [1.0, 1.0, 1.0],
}
VERSIONS = {"keras_adrec": "0.1.0", "tensorflow": "x", "keras": "y"}


def _run(preset, interaction, seed, auc, warmup=300):
    return {
        "preset": preset,
        "interaction": interaction,
        "seed": seed,
        "epochs": 1,
        "learning_rate": 0.05,
        "optimizer": "adagrad",
        "learning_rate_warmup_steps": warmup,
        "batch_size": 128,
        "curve": [{"auc": auc, "logloss": 0.6}],
        "val_auc": auc,
        "val_logloss": 0.6,
        "seconds": 10.0,
    }


def _report(path, command, runs, budget="1 epochs, W 300"):
    report = {
        "command": command,
        "date": "2026-11-30T00:00:00+00:00",
        "versions": VERSIONS,
        "presets": sorted({r["preset"] for r in runs}),
        "interactions": sorted({r["interaction"] for r in runs}),
        "seeds": sorted({r["seed"] for r in runs}),
        "max_points_per_user": None,
        "train_points": 100,
        "val_points": 40,
        "budget": budget,
        "runs": runs,
        "seconds": 20.0,
        "machine": MACHINE,
    }
    path.write_text(json.dumps(report))
    return str(path)


def test_merge_joins_runs_in_preset_and_interaction_order(tmp_path):
    first = _report(
        tmp_path / "a.json",
        "python -m benchmarks.sequential_quality --presets rm6",
        [_run("rm6", "adrec", s, 0.70 + 0.01 * s) for s in range(3)],
    )
    second = _report(
        tmp_path / "b.json",
        "python -m benchmarks.sequential_quality --presets rm4",
        [_run("rm4", "dot", s, 0.60 + 0.02 * s) for s in range(3)],
    )
    argv = ["--merge", first, second, "--output-dir", str(tmp_path)]
    sequential_quality.main(argv)
    merged = json.loads((tmp_path / "sequential_quality.json").read_text())
    assert merged["presets"] == ["rm4", "rm6"]
    assert merged["interactions"] == ["dot", "adrec"]
    assert len(merged["runs"]) == 6 and merged["seconds"] == 40.0
    assert merged["merged_commands"][1].endswith("--presets rm4")
    markdown = (tmp_path / "sequential_quality.md").read_text()
    # Means and sample standard deviations (ddof=1) of each cell.
    assert "| rm4 | 0.6200 ± 0.0200 | – |" in markdown
    assert "| rm6 | – | 0.7100 ± 0.0100 |" in markdown
    assert "Merged from the runs of: `python -m" in markdown


def test_merge_refuses_reports_of_different_budgets(tmp_path):
    first = _report(tmp_path / "a.json", "a", [_run("rm4", "dot", 0, 0.6)])
    second = _report(
        tmp_path / "b.json",
        "b",
        [_run("rm5", "dot", 0, 0.6)],
        budget="1 epochs, W 0",
    )
    with pytest.raises(SystemExit, match="differ in budget"):
        sequential_quality.main(
            ["--merge", first, second, "--output-dir", str(tmp_path)]
        )


def _tbsm(path, seed, auc):
    path.write_text(
        json.dumps(
            {
                "implementation": "facebookresearch/tbsm (PyTorch)",
                "torch": "t",
                "numpy": "n",
                "epochs": 1,
                "learning_rate": 0.05,
                "batch_size": 128,
                "runs": [{"seed": seed, "val_auc": [0.5, auc]}],
            }
        )
    )
    return str(path)


def test_tbsm_comparison_pairs_seeds_and_skips_warmed_up_runs(tmp_path):
    tbsm = [
        _tbsm(tmp_path / f"t{seed}.json", seed, auc)
        for seed, auc in ((0, 0.67), (1, 0.70), (2, 0.64))
    ]
    ours = _report(
        tmp_path / "ours.json",
        "python -m benchmarks.sequential_quality --presets rm4",
        [
            _run("rm4", "dot", s, a, warmup=0)
            for s, a in enumerate((0.69, 0.67, 0.66))
        ]
        # A warmed-up run of the same seed must not be paired with TBSM's.
        + [_run("rm4", "dot", 0, 0.99, warmup=300)]
        + [_run("rm4", "adrec", 1, 0.99, warmup=0)],
    )
    compare.main(
        ["--tbsm", *tbsm, "--ours", ours, "--output-dir", str(tmp_path)]
    )
    report = json.loads((tmp_path / "tbsm_reference.json").read_text())
    assert [r["ours"] for r in report["rows"]] == [0.69, 0.67, 0.66]
    assert [r["tbsm"] for r in report["rows"]] == [0.67, 0.70, 0.64]
    differences = [0.02, -0.03, 0.02]
    assert report["summary"]["difference_mean"] == pytest.approx(
        sum(differences) / 3
    )
    markdown = (tmp_path / "tbsm_reference.md").read_text()
    assert "| 1 | 0.7000 | 0.6700 | -0.0300 |" in markdown
    assert "within 0.01" in markdown
