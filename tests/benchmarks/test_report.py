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


def _report_with(machine):
    return {
        "command": "python -m benchmarks.quality",
        "date": "2026-12-07T00:00:00+00:00",
        "seconds": 1.0,
        "machine": machine,
        "versions": {"tensorflow": "2.21.0"},
    }


def test_header_records_the_tuning_environment(monkeypatch):
    for name in report.TUNING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_prefer_vector_width=512")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    machine = report.machine([0.1, 0.2, 0.3])
    assert machine["environment"] == {
        "XLA_FLAGS": "--xla_cpu_prefer_vector_width=512",
        "OMP_NUM_THREADS": "1",
    }
    lines = report.header_lines("T", _report_with(machine))
    assert (
        "- Environment: `XLA_FLAGS=--xla_cpu_prefer_vector_width=512`, "
        "`OMP_NUM_THREADS=1`"
    ) in lines


def test_header_without_tuning_variables_has_no_environment_line(
    monkeypatch,
):
    for name in report.TUNING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    machine = report.machine([0.1, 0.2, 0.3])
    assert machine["environment"] == {}
    lines = report.header_lines("T", _report_with(machine))
    assert not any(line.startswith("- Environment") for line in lines)
    # Reports written before the environment was recorded still render.
    del machine["environment"]
    assert report.header_lines("T", _report_with(machine))[0] == "# T"
