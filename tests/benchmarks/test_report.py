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


_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: {family}
model\t\t: {model}
model name\t: AMD EPYC
flags\t\t: fpu sse2 {flags}

processor\t: 1
cpu family\t: 99
model\t\t: 99
flags\t\t: avx512f
"""


def test_cpu_identity_tells_apart_cpus_of_one_model_name(tmp_path):
    older = tmp_path / "older"
    older.write_text(_CPUINFO.format(family=23, model=1, flags="avx2 fma"))
    newer = tmp_path / "newer"
    newer.write_text(
        _CPUINFO.format(
            family=25, model=17, flags="avx2 fma avx512f avx512_bf16"
        )
    )
    assert report.cpu_identity(older) == {
        "family": "23",
        "model": "1",
        "features": ["AVX2", "FMA"],
    }
    assert report.cpu_identity(newer)["features"] == [
        "AVX2",
        "FMA",
        "AVX-512F",
        "AVX-512 BF16",
    ]
    facts = {"cpu_model": "AMD EPYC"}
    descriptions = {
        report.cpu_description(
            {**facts, "cpu_identity": report.cpu_identity(path)}
        )
        for path in (older, newer)
    }
    assert descriptions == {
        "AMD EPYC (family 23, model 1; AVX2, FMA, no AVX-512)",
        "AMD EPYC (family 25, model 17; AVX2, FMA, AVX-512F, AVX-512 BF16)",
    }


def test_header_names_the_cpu_identity_and_reads_older_reports():
    machine = {
        "nproc": 2,
        "cpu_model": "AMD EPYC",
        "load_average_at_start": [0.1, 0.2, 0.3],
        "load_average_at_end": [0.1, 0.2, 0.3],
    }
    older = report.header_lines("T", _report_with(machine))
    assert "- Machine: 2 CPUs, AMD EPYC; load average" in "\n".join(older)
    machine["cpu_identity"] = {"family": "23", "model": "1", "features": []}
    lines = "\n".join(report.header_lines("T", _report_with(machine)))
    assert "2 CPUs, AMD EPYC (family 23, model 1; no AVX-512); load" in lines
    assert report.cpu_identity("/nonexistent/cpuinfo") == {}
