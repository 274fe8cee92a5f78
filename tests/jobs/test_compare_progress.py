"""`adrec compare`'s time-left estimate on fake timings."""

import pytest

from keras_adrec.jobs import compare_progress
from keras_adrec.jobs.compare_progress import clock
from keras_adrec.jobs.compare_progress import relative_costs
from keras_adrec.jobs.compare_progress import time_left
from keras_adrec.jobs.compare_variants import BASE_VARIANTS
from keras_adrec.jobs.compare_variants import VARIANTS
from keras_adrec.training.build import CPU_STEP_TIMES

VARIANT_INTERACTIONS = {v: VARIANTS[v][0] for v in BASE_VARIANTS}


def _runs(seconds_by_variant, seeds, first_extra=0.0):
    """`(variant, seconds)` in the job's order (seeds outside)."""
    runs = []
    for _ in range(seeds):
        for variant in BASE_VARIANTS:
            runs.append((variant, seconds_by_variant[variant]))
    runs[0] = (runs[0][0], runs[0][1] + first_extra)
    return runs


def _fastest(interaction, batch):
    graph_ms, xla_ms, _ = CPU_STEP_TIMES[(interaction, batch)]
    return min(graph_ms, xla_ms)


def test_costs_are_the_measured_step_times_at_the_nearest_batch():
    # A long run: the faster of graph and XLA per step, the mode it picks.
    costs = relative_costs(VARIANT_INTERACTIONS, 256)
    assert costs["adrec"] == _fastest("adrec", 128)
    assert costs["dot"] == _fastest("dot", 128)
    assert relative_costs({"dot": "dot"}, 1000)["dot"] == _fastest("dot", 1024)
    # Ablations cost what their interaction costs; an unmeasured one the
    # mean of the measured ones.
    mixed = relative_costs({"adrec-noln": "adrec", "x": "mine"}, 128)
    assert mixed["adrec-noln"] == mixed["x"]


def test_costs_take_each_interactions_faster_mode(monkeypatch):
    # dot's XLA step is the faster, Ad-Rec's graph step.
    table = {("dot", 128): (10.0, 4.0, 1.0), ("adrec", 128): (20.0, 25.0, 1.0)}
    monkeypatch.setattr(compare_progress, "CPU_STEP_TIMES", table)
    interactions = {"dot": "dot", "adrec": "adrec"}
    assert relative_costs(interactions, 128) == {"dot": 4.0, "adrec": 20.0}
    # The nearest measured batch size stands in for an unmeasured one.
    assert relative_costs(interactions, 1000) == {"dot": 4.0, "adrec": 20.0}
    # An interaction the table lacks costs the mean of the measured ones.
    assert relative_costs({"dot": "dot", "x": "mine"}, 128)["x"] == 4.0


def test_after_the_first_run_runs_costing_like_their_steps_are_exact():
    costs = relative_costs(VARIANT_INTERACTIONS, 256)
    seconds = {v: 0.5 * costs[v] for v in BASE_VARIANTS}
    runs = _runs(seconds, seeds=3)
    for done in range(1, len(runs)):
        actual = sum(s for _, s in runs[done:])
        estimate = time_left(runs[:done], BASE_VARIANTS, 3, costs)
        assert estimate == pytest.approx(actual), done


def test_first_run_estimate_is_within_20_percent_on_the_measured_costs():
    # Runs costing what the measured table's steps cost, the first paying
    # 10% start-up.
    costs = relative_costs(VARIANT_INTERACTIONS, 256)
    seconds = {v: 0.5 * costs[v] for v in BASE_VARIANTS}
    runs = _runs(seconds, seeds=3, first_extra=0.1 * seconds["dot"])
    for done in range(1, len(runs)):
        actual = sum(s for _, s in runs[done:])
        estimate = time_left(runs[:done], BASE_VARIANTS, 3, costs)
        assert abs(estimate - actual) <= 0.2 * actual + 1e-9, done


def test_first_run_estimate_is_within_20_percent_where_the_old_was_not(
    monkeypatch,
):
    # Ad-Rec steps cost twice a dot step, the others in between; the runs
    # cost what their steps cost and the first pays 10% start-up.
    table = {
        ("dot", 128): (6.0, 9.0, 1.0),
        ("fm", 128): (6.0, 9.0, 1.0),
        ("autoint", 128): (7.0, 9.0, 1.0),
        ("dcnv2", 128): (8.0, 9.0, 1.0),
        ("adrec", 128): (14.0, 19.0, 1.0),
    }
    monkeypatch.setattr(compare_progress, "CPU_STEP_TIMES", table)
    costs = relative_costs(VARIANT_INTERACTIONS, 256)
    seconds = {v: table[(v, 128)][0] for v in BASE_VARIANTS}
    runs = _runs(seconds, seeds=3, first_extra=0.6)
    actual = sum(s for _, s in runs[1:])
    estimate = time_left(runs[:1], BASE_VARIANTS, 3, costs)
    assert abs(estimate - actual) / actual < 0.2
    # Every run the same cost (the estimate before): over 20% low.
    flat = {v: 1.0 for v in BASE_VARIANTS}
    assert time_left(runs[:1], BASE_VARIANTS, 3, flat) < 0.8 * actual
    # Later estimates only improve.
    for done in range(2, len(runs)):
        actual = sum(s for _, s in runs[done:])
        estimate = time_left(runs[:done], BASE_VARIANTS, 3, costs)
        assert abs(estimate - actual) <= 0.2 * actual + 1e-9, done


def test_start_up_of_the_first_run_is_left_out_once_others_are_timed():
    costs = {"a": 1.0, "b": 1.0}
    runs = [("a", 30.0), ("b", 10.0)]
    # a's next run is estimated from b's rate, not from its slow first run.
    assert time_left(runs, ["a", "b"], 2, costs) == pytest.approx(20.0)
    assert time_left([], ["a", "b"], 2, costs) == 0.0


def test_clock():
    assert clock(59.6) == "1:00"
    assert clock(3725) == "62:05"
