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
