"""Each interaction learns on real Criteo rows (RM1 shape, paper protocol)."""

import numpy as np
import pytest

from keras_adrec.jobs import compare_report
from keras_adrec.jobs.compare import BASE_VARIANTS
from keras_adrec.jobs.compare import VARIANTS
from keras_adrec.jobs.compare import automatic_target
from keras_adrec.jobs.compare import load_comparison_data
from keras_adrec.jobs.compare import steps_to_target
from keras_adrec.jobs.compare import train_variant
from keras_adrec.jobs.compare import variant_fields
from keras_adrec.models import get_preset
from tests import samples

CRITEO = samples.shared_data_file(samples.CRITEO_SAMPLE)


@pytest.fixture(scope="module")
def criteo_rows():
    if CRITEO is None:
        pytest.skip("the real Criteo sample (ADREC_DATA_DIR) is absent")
    return load_comparison_data(data=f"criteo:{CRITEO}", val_fraction=0.2)


def test_split_is_first_8000_then_2000(criteo_rows):
    assert len(criteo_rows.train[1]) == 8000
    assert len(criteo_rows.val[1]) == 2000
    assert criteo_rows.source["synthetic"] is False


@pytest.mark.slow
@pytest.mark.parametrize("variant", BASE_VARIANTS)
def test_each_interaction_learns_rm1_on_criteo(criteo_rows, variant):
    fields = variant_fields(variant, "rm1", {}, None)
    assert fields.embedding_dim == 16 and fields.batch_size == 128
    _, summary = train_variant(criteo_rows, fields, seed=0)
    assert summary["steps"] == 63  # 8,000 rows / 128, one epoch
    # Chance is 0.5; every interaction gets well clear of it in one epoch
    # (the authors' PyTorch code reaches 0.67-0.69 on these rows).
    assert summary["auc"] > 0.6, summary
    # The curve ends at the last step with the final AUC, in training time
    # that only grows.
    curve = summary["curve"]
    assert curve[-1]["step"] == 63
    assert curve[-1]["val_auc"] == pytest.approx(summary["auc"])
    seconds = [point["train_seconds"] for point in curve]
    assert seconds == sorted(seconds) and set(curve[0]) == {
        "step",
        "val_auc",
        "train_seconds",
    }


def test_variants_table_maps_ablations():
    base = get_preset("rm1")
    fixed = variant_fields("adrec-fixed", "rm1", {}, None)
    assert fixed.mask_thresholds == (0.01,) * base.num_heads
    assert (
        variant_fields("adrec-nomask", "rm1", {}, None).mask_thresholds is None
    )
    assert variant_fields("adrec-noln", "rm1", {}, None).use_layer_norm is False
    assert variant_fields("adrec-postln", "rm1", {}, None).norm_first is False
    assert variant_fields("adrec-pos", "rm1", {}, None).positional_embedding
    assert all(VARIANTS[v][0] in BASE_VARIANTS for v in VARIANTS)


def _run(auc, logloss, curve, seconds=None):
    return {
        "auc": auc,
        "logloss": logloss,
        "samples_per_sec": 1000.0,
        "steps": curve[-1][0],
        "curve": [
            {"step": s, "val_auc": a, "train_seconds": s / 10} for s, a in curve
        ],
    }


def test_steps_to_target_reads_the_first_evaluation_at_target():
    curve = _run(0.7, 0.5, [(10, 0.6), (20, 0.69), (30, 0.7), (40, 0.71)])
    assert steps_to_target(curve["curve"], 0.69) == (20, 2.0)
    assert steps_to_target(curve["curve"], 0.8) == (None, None)


def test_automatic_target_is_a_share_of_the_best_lift():
    runs = {
        "dot": [_run(0.70, 0.5, [(1, 0.7)]), _run(0.72, 0.5, [(1, 0.72)])],
        "adrec": [
            _run(0.80, 0.5, [(1, 0.8)]),
            _run(0.5, float("nan"), [(1, 0.5)]),
        ],
    }
    # adrec's diverged seed is left out: best mean is 0.80.
    assert automatic_target(runs) == pytest.approx(0.5 + 0.95 * 0.30)


def test_aggregate_uses_sample_std_and_counts_divergence():
    runs = [
        dict(
            _run(0.70, 0.50, [(10, 0.7)]),
            steps_to_target=10,
            seconds_to_target=1.0,
        ),
        dict(
            _run(0.72, 0.52, [(20, 0.72)]),
            steps_to_target=20,
            seconds_to_target=2.0,
        ),
        dict(
            _run(0.50, float("nan"), [(30, 0.5)]),
            steps_to_target=None,
            seconds_to_target=None,
        ),
    ]
    row = compare_report.aggregate("adrec", "Ad-Rec", runs)
    assert row["diverged"] == 1
    assert row["auc_mean"] == pytest.approx(0.71)
    assert row["auc_std"] == pytest.approx(np.std([0.70, 0.72], ddof=1))
    assert row["steps_to_target"] == 15 and row["reached_target"] == 2
    assert row["steps_to_target_std"] == pytest.approx(np.std([10, 20], ddof=1))
    # The worst seed counts every run, the diverged one included.
    assert row["auc_worst"] == pytest.approx(0.50)


def test_table_names_the_worst_seed_beside_the_mean():
    runs = [
        dict(_run(auc, 0.5, [(10, auc)]), seed=seed, holdout_auc=auc + 0.01)
        for seed, auc in [(0, 0.71), (1, 0.66), (2, 0.70)]
    ]
    for run in runs:
        run.update(steps_to_target=None, seconds_to_target=None)
    row = compare_report.aggregate("adrec", "Ad-Rec", runs)
    assert row["auc_worst"] == pytest.approx(0.66)
    assert row["auc_worst_seed"] == 1
    source = {"synthetic": True, "split": "day 5", "holdout": "days 0-4"}
    table = compare_report.markdown_table([row], source, with_holdout=True)
    header, _, line = table.splitlines()[2:5]
    cells = [c.strip() for c in line.strip("|").split("|")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert cells[columns.index("worst seed")] == "0.6600 (seed 1)"
    assert columns.index("worst seed") == columns.index("val AUC (shifted)") + 1


def test_headline_compares_adrec_with_the_best_baseline():
    def row(variant, steps, seconds):
        return {
            "variant": variant,
            "seeds": 3,
            "reached_target": 3,
            "steps_to_target": steps,
            "seconds_to_target": seconds,
        }

    text = compare_report.headline(
        [
            row("dot", 200, 10.0),
            row("dcnv2", 150, 12.0),
            row("adrec", 100, 20.0),
        ],
        0.7,
        automatic=True,
    )
    assert "0.67x the steps of the best baseline (dcnv2, 150)" in text
    assert "2.00x the fastest baseline's (dot, 10.0 s)" in text
