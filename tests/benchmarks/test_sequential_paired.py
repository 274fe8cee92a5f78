"""The paired sequential report: best baseline, paired difference, merge.

Tested on hand-made runs; the training runs themselves are benchmarks.
"""

import json
import math

import pytest

from benchmarks import sequential_paired

MACHINE = {
    "nproc": 2,
    "cpu_model": "test CPU",
    "platform": "test",
    "load_average_at_start": [0.0, 0.0, 0.0],
    "load_average_at_end": [1.0, 1.0, 1.0],
}


def _report(runs, **changes):
    report = {
        "command": "python -m benchmarks.sequential_paired",
        "date": "2026-12-07T00:00:00+00:00",
        "versions": {"keras_adrec": "0.1.0"},
        "dataset": "taobao",
        "data_note": "`taobao/x.csv`: 10 events",
        "presets": sorted({r["preset"] for r in runs}),
        "interactions": [
            i
            for i in sequential_paired.INTERACTIONS
            if any(r["interaction"] == i for r in runs)
        ],
        "seeds": sorted({r["seed"] for r in runs}),
        "overrides": {},
        "train_points": 100,
        "val_points": 40,
        "cut_time": 7,
        "budget": "1 epoch(s)",
        "runs": runs,
        "seconds": 20.0,
        "machine": MACHINE,
    }
    report.update(changes)
    return report


def _runs(preset, interaction, aucs):
    return [
        {
            "preset": preset,
            "interaction": interaction,
            "seed": seed,
            "val_auc": auc,
        }
        for seed, auc in enumerate(aucs)
    ]


def test_difference_is_paired_against_the_best_mean_baseline():
    runs = (
        _runs("rm4", "dot", [0.70, 0.60, 0.80])
        + _runs("rm4", "fm", [0.72, 0.71, 0.73])  # best mean, 0.72
        + _runs("rm4", "adrec", [0.74, 0.72, 0.77])
    )
    found = sequential_paired.comparison(_report(runs), "rm4")
    differences = [0.02, 0.01, 0.04]
    mean = sum(differences) / 3
    std = math.sqrt(sum((d - mean) ** 2 for d in differences) / 2)
    assert found["best"] == "fm"
    assert found["n"] == 3
    assert found["mean"] == pytest.approx(mean)
    assert found["se"] == pytest.approx(std / math.sqrt(3))
    # t quantile for 2 degrees of freedom at 97.5%: 4.3027.
    half = 4.302653 * std / math.sqrt(3)
    assert found["low"] == pytest.approx(mean - half, abs=1e-6)
    assert found["high"] == pytest.approx(mean + half, abs=1e-6)


def test_unpaired_seeds_are_left_out():
    runs = _runs("rm5", "dot", [0.70, 0.71, 0.72]) + _runs(
        "rm5", "adrec", [0.75, 0.76]
    )
    found = sequential_paired.comparison(_report(runs), "rm5")
    assert found["n"] == 2
    assert found["mean"] == pytest.approx(0.05)


def test_no_comparison_without_adrec():
    runs = _runs("rm4", "dot", [0.7, 0.71])
    assert sequential_paired.comparison(_report(runs), "rm4") is None


def test_table_shows_spread_difference_and_interval():
    runs = _runs("rm4", "dcnv2", [0.70, 0.72]) + _runs(
        "rm4", "adrec", [0.73, 0.74]
    )
    text = "\n".join(sequential_paired.markdown(_report(runs)))
    assert "mean ± sample std (ddof=1) over 2 seeds" in text
    assert "| rm4 | 0.7100 ± 0.0141 | 0.7350 ± 0.0071 | dcnv2 |" in text
    assert "+0.0250 ± 0.0050" in text
    assert "100 training, 40 validation" in text


def test_merge_joins_runs_and_refuses_other_data(tmp_path):
    first = tmp_path / "a.json"
    second = tmp_path / "b.json"
    first.write_text(json.dumps(_report(_runs("rm4", "dot", [0.7, 0.71]))))
    second.write_text(json.dumps(_report(_runs("rm4", "adrec", [0.72, 0.8]))))
    sequential_paired.main(
        ["--merge", str(first), str(second)]
        + ["--output-dir", str(tmp_path), "--name", "merged"]
    )
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert len(merged["runs"]) == 4
    assert merged["interactions"] == ["dot", "adrec"]
    assert "Merged from" in (tmp_path / "merged.md").read_text()

    second.write_text(
        json.dumps(_report(_runs("rm4", "adrec", [0.7]), dataset="movielens"))
    )
    with pytest.raises(SystemExit, match="differ in dataset"):
        sequential_paired.main(
            ["--merge", str(first), str(second)]
            + ["--output-dir", str(tmp_path), "--name", "bad"]
        )


def test_combine_writes_one_section_per_data_set(tmp_path):
    taobao = tmp_path / "t.json"
    movielens = tmp_path / "m.json"
    taobao.write_text(json.dumps(_report(_runs("rm4", "dot", [0.7, 0.71]))))
    movielens.write_text(
        json.dumps(
            _report(_runs("rm4", "dot", [0.8, 0.81]), dataset="movielens")
        )
    )
    sequential_paired.main(
        ["--combine", str(taobao), str(movielens)]
        + ["--output-dir", str(tmp_path), "--name", "both"]
    )
    text = (tmp_path / "both.md").read_text()
    assert text.count("\n## Sequential models, paired seeds") == 2
    assert "(taobao)" in text and "(movielens)" in text
    assert "0.8050 ± 0.0071" in text


def test_smaller_split_is_named_and_not_merged_with_the_whole(tmp_path):
    runs = _runs("rm4", "adrec", [0.53, 0.55])
    text = "\n".join(
        sequential_paired.markdown(_report(runs, max_points_per_user=20))
    )
    assert "each user's 20 most recent windows per split" in text
    whole = tmp_path / "whole.json"
    small = tmp_path / "small.json"
    whole.write_text(json.dumps(_report(_runs("rm4", "dot", [0.7, 0.71]))))
    small.write_text(json.dumps(_report(runs, max_points_per_user=20)))
    with pytest.raises(SystemExit, match="differ in max_points_per_user"):
        sequential_paired.main(
            ["--merge", str(whole), str(small)]
            + ["--output-dir", str(tmp_path), "--name", "bad"]
        )


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_max_points_per_user_must_be_a_positive_integer(value, capsys):
    with pytest.raises(SystemExit) as raised:
        sequential_paired.parse_args(["--max-points-per-user", value])
    assert raised.value.code == 2
    assert "--max-points-per-user" in capsys.readouterr().err


def test_deterministic_turns_on_op_determinism_before_any_run(monkeypatch):
    import tensorflow as tf

    calls = []
    monkeypatch.setattr(
        tf.config.experimental,
        "enable_op_determinism",
        lambda: calls.append("determinism"),
    )

    def stop(dataset):
        calls.append("load")
        raise SystemExit("stop")

    monkeypatch.setattr(sequential_paired, "load_events", stop)
    with pytest.raises(SystemExit, match="stop"):
        sequential_paired.main(["--deterministic"])
    assert calls == ["determinism", "load"]
    with pytest.raises(SystemExit, match="stop"):
        sequential_paired.main([])
    assert calls == ["determinism", "load", "load"]


def test_deterministic_runs_are_named_and_not_merged_with_others(tmp_path):
    runs = _runs("rm4", "adrec", [0.68, 0.68])
    text = "\n".join(
        sequential_paired.markdown(_report(runs, deterministic=True))
    )
    assert "TensorFlow op determinism on" in text
    plain = "\n".join(sequential_paired.markdown(_report(runs)))
    assert "determinism" not in plain
    first = tmp_path / "a.json"
    second = tmp_path / "b.json"
    first.write_text(json.dumps(_report(_runs("rm4", "dot", [0.7, 0.71]))))
    second.write_text(json.dumps(_report(runs, deterministic=True)))
    with pytest.raises(SystemExit, match="differ in deterministic"):
        sequential_paired.main(
            ["--merge", str(first), str(second)]
            + ["--output-dir", str(tmp_path), "--name", "bad"]
        )
