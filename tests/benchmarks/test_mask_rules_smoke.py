"""Smoke test: the mask-rules benchmark runs end to end, tiny."""

import json

import pytest

from benchmarks import mask_rules
from tests.samples import CRITEO_SAMPLE
from tests.samples import shared_data_file


@pytest.mark.skipif(
    shared_data_file(CRITEO_SAMPLE) is None,
    reason="the Criteo sample (research-only) is not in the shared data dir",
)
def test_mask_rules_smoke_on_criteo_sample(tmp_path):
    argv = [
        "--seeds",
        "1",
        "--datasets",
        "criteo",
        "--variants",
        "nomask,paper",
        "--output-dir",
        str(tmp_path),
    ]
    assert mask_rules.main(argv) == 0
    with open(tmp_path / "mask_rules.json") as f:
        report = json.load(f)
    markdown = (tmp_path / "mask_rules.md").read_text()

    assert report["command"] == (
        "python -m benchmarks.mask_rules --seeds 1 --datasets criteo "
        f"--variants nomask,paper --output-dir {tmp_path}"
    )
    assert report["machine"]["nproc"] >= 1
    assert len(report["machine"]["load_average_at_end"]) == 3
    assert set(report["versions"]) >= {"tensorflow", "keras", "keras_adrec"}
    assert report["seeds"] == 1
    assert [(r["variant"], r["seed"]) for r in report["runs"]] == [
        ("nomask", 0),
        ("paper", 0),
    ]
    table = report["table"]["criteo"]
    assert list(table) == ["nomask", "paper"]
    for entry in table.values():
        assert 0.0 <= entry["auc_mean"] <= 1.0
        assert entry["auc_std"] is None  # one seed: no sample std
        assert entry["num_keys"] == 27
    # Without a mask every query keeps every key.
    assert table["nomask"]["mean_kept_keys"] == [27.0, 27.0]
    assert "vs_nomask" not in table["nomask"]
    diff, se, verdict = table["paper"]["vs_nomask"]
    assert diff == pytest.approx(
        table["paper"]["auc_mean"] - table["nomask"]["auc_mean"]
    )
    assert se is None and verdict == "n/a"
    assert "selection" not in report  # the selection needs both datasets

    lines = markdown.splitlines()
    assert lines[0] == "# Mask rules: validation AUC and sparsity"
    assert lines[2] == f"- Command: `{report['command']}`"
    assert "mean ± sample std (ddof=1) over 1 seed." in markdown
    assert "## criteo (RM1), `criteo/train_head10k.txt`" in lines
    assert (
        "| variant | what | val AUC (mean ± std) | − no mask (mean ± se) "
        "| vs no mask | kept keys per head | single-key rows per head "
        "| AUC per seed |"
    ) in lines
    assert "|---|---|---:|---:|---|---:|---:|---|" in lines
    nomask_row = next(x for x in lines if x.startswith("| nomask |"))
    assert nomask_row.startswith("| nomask | Ad-Rec without mask | 0.")
    assert "| – | – | 27.0, 27.0 of 27 | 0%, 0% |" in nomask_row
    paper_row = next(x for x in lines if x.startswith("| paper |"))
    assert paper_row.startswith("| paper | paper rule, preset thresholds |")
    assert f"| {diff:+.4f} ± – | n/a |" in paper_row
    assert "## Selection" not in markdown
