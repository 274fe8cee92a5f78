"""Slow tier: every study of `benchmarks.studies` runs `--quick` end to
end on the real samples and writes its report, table rows and plots."""

import json

import pytest

from benchmarks import studies
from tests.samples import shared_data_file

pytestmark = pytest.mark.slow

SAMPLES = {
    "criteo": ("criteo/train_head10k.txt", "criteo/later_days_2185.txt"),
    "avazu": ("avazu/train_head9999.csv",),
    "taobao": ("taobao/UserBehavior_head84k.csv",),
}
PLOTS = {
    "positional": ["positional.png"],
    "sensitivity": ["sensitivity.png"],
    "scaling": ["scaling.png"],
    "budget": ["budget-flops.png", "budget-seconds.png"],
    "views": ["views.png"],
}


def run(tmp_path, name, *extra):
    argv = ["--study", name, "--quick", "--output-dir", str(tmp_path), *extra]
    assert studies.main(argv) == 0
    markdown = (tmp_path / f"{name}.md").read_text()
    with open(tmp_path / f"{name}.json") as f:
        report = json.load(f)
    return report, markdown


@pytest.mark.parametrize("name", studies.STUDY_NAMES)
def test_quick_study_writes_its_report(tmp_path, name):
    study = studies.STUDIES[name](True)
    for dataset in study.datasets:
        for sample in SAMPLES[dataset]:
            if shared_data_file(sample) is None:
                pytest.skip(f"sample {sample} not found")
    # The budget study's seconds: quiet when every run is trained now.
    extra = ["--quiet-machine"] if name == "budget" else []
    report, markdown = run(tmp_path, name, *extra)
    assert report["command"] == (
        f"python -m benchmarks.studies --study {name} --quick "
        f"--output-dir {tmp_path}" + "".join(f" {a}" for a in extra)
    )
    assert report["machine"]["shared"] is (name != "budget")
    if name == "budget":
        assert "training seconds, quiet machine" in markdown
        assert "SHARED" not in markdown
    assert report["settings"]["seeds"] == [0, 1]
    assert markdown.startswith(f"# {study.title} — QUICK\n")
    assert "mean ± sample std (ddof=1) over 2 seeds" in markdown
    for cell in study.cells:
        assert f"| {cell.label} |" in markdown
    rows = {(r["dataset"], r["label"]): r for r in report["rows"]}
    assert len(rows) == len({(c.dataset, c.label) for c in study.cells})
    for row in rows.values():
        assert row["seeds"] == [0, 1]
        assert 0.0 <= row["same_auc_mean"] <= 1.0
        assert 0.0 <= row["later_auc_mean"] <= 1.0
        assert row["parameters"] > 0
    reading = markdown.split("## Reading\n", 1)[1]
    assert any(
        f"**{word}**" in reading for word in ("yes", "no", "not decided")
    )
    for plot in PLOTS[name]:
        assert (tmp_path / plot).stat().st_size > 1000
    if name == "positional":
        # Resumable: the same command again trains nothing new.
        before = (tmp_path / "positional.runs.jsonl").read_text()
        again, _ = run(tmp_path, name, "--quiet-machine")
        after = (tmp_path / "positional.runs.jsonl").read_text()
        assert after == before
        assert again["rows"] == report["rows"]
        # Runs read back keep their old timings: never labelled quiet.
        assert again["machine"]["shared"] is True
