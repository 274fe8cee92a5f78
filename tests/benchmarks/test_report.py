"""The shared report module of the benchmarks."""

from benchmarks import report


def test_command_line_is_the_module_invocation():
    command = report.command_line("quality", ["--seeds", "3", "a b"])
    assert command == "python -m benchmarks.quality --seeds 3 'a b'"


def test_shared_data_file_honours_adrec_data_dir(tmp_path, monkeypatch):
    (tmp_path / "criteo").mkdir()
    (tmp_path / "criteo" / "sample.txt").write_text("0\n")
    monkeypatch.setenv("ADREC_DATA_DIR", str(tmp_path))
    assert report.shared_data_dir() == tmp_path
    found = report.shared_data_file("criteo/sample.txt")
    assert found == tmp_path / "criteo" / "sample.txt"
    assert report.shared_data_file("criteo/absent.txt") is None


def test_shared_data_dir_defaults_beside_the_checkout(monkeypatch):
    monkeypatch.delenv("ADREC_DATA_DIR", raising=False)
    expected = report.REPO_ROOT.parent / "shared" / "data"
    assert report.shared_data_dir() == expected


def test_spread_label_names_the_statistic_and_the_seeds():
    assert report.spread_label(5) == ("mean ± sample std (ddof=1) over 5 seeds")
    assert report.spread_label(1) == "mean ± sample std (ddof=1) over 1 seed"
