"""The protocol's decision rule on hand-made runs (no training)."""

import json

from benchmarks import robustness_decision

SEEDS = [0, 1, 2]
DATASETS = ["criteo", "avazu"]


def _runs(dataset, interaction, aucs, overrides=None, rate=0.1):
    return [
        {
            "dataset": dataset,
            "interaction": interaction,
            "learning_rate": rate,
            "seed": seed,
            "overrides": overrides or {},
            "later_auc": auc,
        }
        for seed, auc in zip(SEEDS, aucs)
    ]


def _baselines():
    runs = []
    for d in DATASETS:
        runs += _runs(d, "dot", [0.70, 0.70, 0.70])
        runs += _runs(d, "fm", [0.71, 0.71, 0.72])  # best; std 0.0058
        runs += _runs(d, "autoint", [0.69, 0.69, 0.69])
        runs += _runs(d, "dcnv2", [0.70, 0.70, 0.70])
    return runs


def _rows(runs):
    bars, rows = robustness_decision.decide(
        runs, json.dumps({}), SEEDS, DATASETS
    )
    return bars, {r["overrides"]: r for r in rows}


def test_passes_need_the_best_mean_and_at_most_twice_the_largest_std():
    runs = _baselines()
    for d in DATASETS:
        runs += _runs(d, "adrec", [0.68, 0.74, 0.72])  # mean ok, std 0.03
    steady = {"min_frequency": 2}
    runs += _runs("criteo", "adrec", [0.715, 0.716, 0.717], steady)
    runs += _runs("avazu", "adrec", [0.70, 0.70, 0.70], steady)
    bars, rows = _rows(runs)
    (best, name), (largest, _) = bars["criteo"]
    assert name == "fm" and abs(best - 0.7133) < 1e-4
    assert abs(largest - 0.0058) < 1e-4
    assert rows["{}"]["passes"] == []
    assert rows[json.dumps(steady)]["passes"] == ["criteo"]
    assert rows[json.dumps(steady)]["replaces_default"]


def test_a_tie_on_the_worst_seed_goes_to_the_default():
    runs = _baselines()
    for d in DATASETS:
        runs += _runs(d, "adrec", [0.700, 0.705, 0.710])
        runs += _runs(d, "adrec", [0.701, 0.705, 0.710], {"use_ema": True})
        runs += _runs(d, "adrec", [0.704, 0.705, 0.710], {"dropout": 0.0})
    _, rows = _rows(runs)
    assert not rows[json.dumps({"use_ema": True})]["replaces_default"]
    assert rows[json.dumps({"dropout": 0.0})]["replaces_default"]


def test_accuracy_lost_beyond_one_standard_error_keeps_the_default():
    runs = _baselines()
    for d in DATASETS:
        runs += _runs(d, "adrec", [0.690, 0.740, 0.740])
        # better worst seed, but every seed far below the default's
        runs += _runs(d, "adrec", [0.695, 0.700, 0.701], {"dropout": 0.0})
    _, rows = _rows(runs)
    row = rows[json.dumps({"dropout": 0.0})]
    assert row["mean_worst"] > rows["{}"]["mean_worst"] + 0.002
    assert row["paired_mean"] < -row["paired_se"]
    assert not row["replaces_default"]


def test_baseline_bars_and_candidates_may_use_different_seeds():
    runs = _baselines()  # seeds 0-2 only
    more = [0, 1, 2, 7, 8]
    for d in DATASETS:
        for seed, auc in zip(more, [0.72, 0.72, 0.72, 0.60, 0.72]):
            runs.append(
                {
                    "dataset": d,
                    "interaction": "adrec",
                    "learning_rate": 0.1,
                    "seed": seed,
                    "overrides": {},
                    "later_auc": auc,
                }
            )
    bars, rows = robustness_decision.decide(
        runs, json.dumps({}), more, DATASETS, baseline_seeds=SEEDS
    )
    assert bars["criteo"][0][1] == "fm"
    row = rows[0]
    assert sorted(row["per"]["criteo"]) == more
    # The bad fourth seed is counted: the mean falls below FM's 0.7133.
    assert row["passes"] == []
    assert abs(row["mean_worst"] - 0.60) < 1e-9
    # Without the baselines on seeds 7 and 8 there are no bars at all.
    bars, rows = robustness_decision.decide(
        runs, json.dumps({}), more, DATASETS
    )
    assert bars == {} and rows == []
