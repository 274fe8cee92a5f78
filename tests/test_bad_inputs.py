"""Bad data through the `adrec` command, as a table (issue 18).

Each row: a builder that writes the input file(s) into a temporary
folder, the command's arguments, the expected exit status and words the
one-line message must hold (the file name and line are checked apart). The
command runs in-process (`keras_adrec.cli.main`), so a traceback would
surface as an exception, not as text. Adding the next data defect is adding
one row.
"""

import gzip
import json

import pytest

from keras_adrec import cli
from tests import samples

CRITEO = samples.shared_data_file("criteo/train_head10k.txt")
AVAZU = samples.shared_data_file("avazu/train_head9999.csv")
TAOBAO = samples.shared_data_file("taobao/UserBehavior_head84k.csv")


def _lines(sample, count):
    if sample is None:
        pytest.skip("the shared data samples are absent")
    with open(sample, "rb") as f:
        return [f.readline() for _ in range(count)]


def criteo(count=200):
    return _lines(CRITEO, count)


def avazu(count=201):
    return _lines(AVAZU, count)


def taobao(count=400):
    return _lines(TAOBAO, count)


def truncated_gzip(lines):
    data = gzip.compress(b"".join(lines))
    return data[: len(data) // 2]


def non_utf8(lines, row, field, delimiter):
    lines = list(lines)
    fields = lines[row].split(delimiter)
    fields[field] = b"\xff\xfe" + fields[field]
    lines[row] = delimiter.join(fields)
    return b"".join(lines)


def write(name, data):
    def build(folder):
        path = folder / name
        path.write_bytes(data() if callable(data) else data)
        return path

    return build


def empty_folder(folder):
    path = folder / "days"
    path.mkdir()
    (path / ".keep").write_bytes(b"")
    return path


# (id, kind, builder, expected exit status, line or None, words)
CASES = [
    (
        "criteo truncated gzip",
        "criteo",
        write("day.gz", lambda: truncated_gzip(criteo())),
        1,
        "line ",
        ["compressed stream ends early", "truncated"],
    ),
    (
        "criteo non-UTF-8 categorical",
        "criteo",
        write("day.txt", lambda: non_utf8(criteo(), 7, 18, b"\t")),
        1,
        "line 8, column C5",
        ["expected 8 hex digits"],
    ),
    (
        "criteo non-UTF-8 dense",
        "criteo",
        write("day.txt", lambda: non_utf8(criteo(), 7, 2, b"\t")),
        1,
        "line 8, column I2",
        ["expected an integer count"],
    ),
    (
        "criteo gzip non-UTF-8 label",
        "criteo",
        write(
            "day.gz",
            lambda: gzip.compress(non_utf8(criteo(), 4, 0, b"\t")),
        ),
        1,
        "line 5, column label",
        ["expected 0 or 1"],
    ),
    (
        "criteo empty file",
        "criteo",
        write("day.txt", b""),
        1,
        None,
        ["the file is empty"],
    ),
    (
        "criteo one row: empty validation split",
        "criteo",
        write("day.txt", lambda: criteo(1)[0]),
        1,
        None,
        ["'val' split is empty", "1 data rows"],
    ),
    (
        "criteo header line only",
        "criteo",
        write(
            "day.txt", b"label\t" + b"\t".join(b"I%d" % i for i in range(1, 14))
        ),
        1,
        None,
        ["'val' split is empty"],
    ),
    (
        "criteo directory without data files",
        "criteo",
        empty_folder,
        1,
        None,
        ["contains no data files"],
    ),
    (
        "avazu header line only",
        "avazu",
        write("train.csv", lambda: avazu(1)[0]),
        1,
        None,
        ["the file has no data rows"],
    ),
    (
        "avazu truncated gzip",
        "avazu",
        write("train.gz", lambda: truncated_gzip(avazu())),
        1,
        "line ",
        ["compressed stream ends early"],
    ),
    (
        "avazu non-UTF-8 token",
        "avazu",
        write("train.csv", lambda: non_utf8(avazu(), 5, 5, b",")),
        1,
        "line 6, column site_id",
        ["expected a token"],
    ),
    (
        "taobao truncated gzip",
        "taobao",
        write("events.gz", lambda: truncated_gzip(taobao(3000))),
        1,
        "line ",
        ["compressed stream ends early"],
    ),
    (
        "taobao non-UTF-8 behavior",
        "taobao",
        write("events.csv", lambda: non_utf8(taobao(), 5, 3, b",")),
        1,
        "line 6, column behavior",
        ["expected one of pv"],
    ),
    (
        "taobao empty file",
        "taobao",
        write("events.csv", b""),
        1,
        None,
        ["the file is empty"],
    ),
]


@pytest.mark.parametrize(
    "kind, build, status, line, words",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_data_is_one_line_with_file_and_line(
    tmp_path, capsys, kind, build, status, line, words
):
    data = build(tmp_path)
    output = tmp_path / "run"
    code = cli.main(
        [
            "train",
            "--data",
            f"{kind}:{data}",
            "--output",
            str(output),
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == status, err
    assert "Traceback" not in err
    message = [ln for ln in err.splitlines() if ln.startswith("adrec: ")]
    assert len(message) == 1, err
    message = message[0]
    assert message.startswith(f"adrec: data error: {data}"), message
    if line is not None:
        assert f"{data}, {line}" in message, message
    for word in words:
        assert word in message, message
    assert not (output / "model.keras").exists()


def test_skipped_lines_are_logged_and_counted_once(tmp_path, capfd):
    lines = criteo()
    bad_rows = (10, 50, 90, 130)
    for row in bad_rows:
        lines[row] = b"garbage\n"
    data = tmp_path / "day.txt"
    data.write_bytes(b"".join(lines))
    output = tmp_path / "run"
    code = cli.main(
        [
            "train",
            "--data",
            f"criteo:{data}",
            "--output",
            str(output),
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--on-bad-lines",
            "skip",
            "--quiet",
        ]
    )
    captured = capfd.readouterr()
    assert code == 0, captured.err
    for row in bad_rows:
        described = f"{data}, line {row + 1}: expected 40 tab-separated"
        assert captured.err.count(described) == 1, captured.err
    assert captured.err.count("skipped 4 malformed criteo lines") == 1
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["skipped_lines"] == {"train": 4, "val": 0}


def test_every_line_skipped_is_a_data_error(tmp_path, capfd):
    data = tmp_path / "day.txt"
    data.write_bytes(b"garbage\n" * 20)
    code = cli.main(
        [
            "train",
            "--data",
            f"criteo:{data}",
            "--output",
            str(tmp_path / "run"),
            "--on-bad-lines",
            "skip",
            "--quiet",
        ]
    )
    err = capfd.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    assert f"adrec: data error: {data}: no data rows in the 'train'" in err
    assert "16 malformed lines skipped" in err


# Bad arguments and output folders: (id, extra arguments, words). Each is
# refused in one line with exit status 2 before any data is read, and
# nothing is written.
ARGUMENT_CASES = [
    ("batch size 0", ["--batch-size", "0"], ["--batch-size", "positive"]),
    ("negative batch size", ["--batch-size", "-5"], ["--batch-size"]),
    ("negative seed", ["--seed", "-1"], ["--seed", "non-negative"]),
    ("zero epochs", ["--epochs", "0"], ["--epochs", "positive"]),
    ("val fraction 1", ["--val-fraction", "1"], ["--val-fraction"]),
    (
        "heads that do not divide the width",
        ["--set", "num_heads=3"],
        ["--set", "num_heads"],
    ),
    (
        "a threshold above 1",
        ["--set", "mask_thresholds=[2.0,0.1]"],
        ["--set", "mask_thresholds"],
    ),
    ("unknown preset field", ["--set", "num_head=2"], ["Unknown preset field"]),
    ("a --set without =", ["--set", "num_heads"], ["KEY=VALUE"]),
    ("target AUC above 1", ["--target-auc", "1.5"], ["--target-auc"]),
    ("unknown interaction", ["--interaction", "cross"], ["interaction"]),
]


@pytest.fixture
def small_criteo(tmp_path):
    data = tmp_path / "data" / "day.txt"
    data.parent.mkdir()
    data.write_bytes(b"".join(criteo(300)))
    return data


def _train(data, output, *extra):
    return cli.main(
        ["train", "--data", f"criteo:{data}", "--output", str(output)]
        + ["--batch-size", "64", "--quiet", *extra]
    )


def _one_line(err):
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("adrec: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "extra, words",
    [case[1:] for case in ARGUMENT_CASES],
    ids=[case[0] for case in ARGUMENT_CASES],
)
def test_bad_arguments_exit_2_before_any_work(
    small_criteo, tmp_path, capsys, extra, words
):
    output = tmp_path / "run"
    # --batch-size given last wins, so the probes can override it.
    status = cli.main(
        ["train", "--data", f"criteo:{small_criteo}", "--output", str(output)]
        + ["--quiet", *extra]
    )
    message = _one_line(capsys.readouterr().err)
    assert status == 2, message
    assert message.startswith("adrec: error: ")
    for word in words:
        assert word in message, message
    assert not output.exists()
    assert not list(tmp_path.glob(".run*"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished run and a snapshot of its files."""
    folder = tmp_path_factory.mktemp("finished")
    data = folder / "day.txt"
    data.write_bytes(b"".join(criteo(300)))
    output = folder / "run"
    assert _train(data, output) == 0
    snapshot = {p.name: p.read_bytes() for p in output.iterdir() if p.is_file()}
    return data, output, snapshot


def _unchanged(output, snapshot):
    now = {p.name: p.read_bytes() for p in output.iterdir() if p.is_file()}
    return now == snapshot


def test_a_finished_run_is_not_replaced_without_overwrite(finished_run, capsys):
    data, output, snapshot = finished_run
    assert _train(data, output) == 2
    message = _one_line(capsys.readouterr().err)
    assert "--overwrite" in message and str(output) in message
    assert _unchanged(output, snapshot)


def test_a_second_run_into_a_busy_output_is_refused(
    small_criteo, tmp_path, capsys
):
    from keras_adrec.training.model_directory import staged_output

    output = tmp_path / "run"
    # The first run holds the output's lock (as a run in another process
    # does); the second is refused at once and writes nothing.
    with staged_output(output) as staging:
        (staging / "model.keras").write_bytes(b"first run")
        assert _train(small_criteo, output) == 2
        message = _one_line(capsys.readouterr().err)
        assert "is writing" in message and str(output) in message
    assert (output / "model.keras").read_bytes() == b"first run"


def test_an_output_inside_the_data_is_refused(small_criteo, capsys):
    output = small_criteo.parent / "run"
    assert _train(small_criteo.parent, output) == 2
    assert "inside the input" in _one_line(capsys.readouterr().err)
    assert not output.exists()


def test_a_failed_run_leaves_nothing_behind(tmp_path, capsys):
    data = tmp_path / "day.txt"
    lines = criteo(300)
    lines[250] = b"garbage\n"
    data.write_bytes(b"".join(lines))
    output = tmp_path / "run"
    assert _train(data, output) == 1
    assert "line 251" in _one_line(capsys.readouterr().err)
    assert not output.exists()
    assert not list(tmp_path.glob(".run*"))


def test_a_truncated_model_file_is_named(finished_run, tmp_path, capsys):
    data, output, _ = finished_run
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in output.iterdir():
        if path.is_file():
            (broken / path.name).write_bytes(path.read_bytes())
    model = (output / "model.keras").read_bytes()
    (broken / "model.keras").write_bytes(model[: len(model) // 2])
    (broken / "preprocessing").symlink_to(output / "preprocessing")
    status = cli.main(
        ["evaluate", "--model", str(broken), "--data", f"criteo:{data}"]
    )
    message = _one_line(capsys.readouterr().err)
    assert status == 1, message
    assert f"{broken / 'model.keras'} cannot be read" in message


def test_a_successful_run_prints_no_end_of_data_warning(tmp_path, capfd):
    data = tmp_path / "day.txt"
    data.write_bytes(b"".join(criteo(300)))
    assert _train(data, tmp_path / "run", "--epochs", "2") == 0
    assert "ran out of data" not in capfd.readouterr().err


def test_constant_predictions_are_reported(
    small_criteo, tmp_path, capsys, monkeypatch
):
    # A model that predicts one value everywhere (saturated or untrained)
    # must not pass for a finished run: the job's summary says so.
    def saturated(settings):
        return {"auc": 0.5, "logloss": 3.5, "constant_predictions": True}

    monkeypatch.setattr(cli.train, "train_ranking", saturated)
    assert _train(small_criteo, tmp_path / "run") == 0
    err = capsys.readouterr().err
    assert "adrec: warning: every validation prediction is the same" in err
