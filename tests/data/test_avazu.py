"""Avazu reader: exact parsing against plain Python, header, bad lines."""

import gzip
import random

import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.data import AVAZU_SCHEMA
from keras_adrec.data import DataFormatError
from keras_adrec.data import avazu_dataset
from keras_adrec.data import make_dataset
from keras_adrec.data.schema import AVAZU_COLUMNS
from tests.samples import shared_data_file

AVAZU_SAMPLE = "avazu/train_head9999.csv"
HEADER = ",".join(AVAZU_COLUMNS)


def avazu_sample():
    path = shared_data_file(AVAZU_SAMPLE)
    if path is None:
        pytest.skip(f"real data sample {AVAZU_SAMPLE} is absent")
    return str(path)


def make_lines(count, seed=0):
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        hour = f"1410{21 + i % 9:02d}{rng.randint(0, 23):02d}"
        fields = [str(10**18 + i), str(rng.randint(0, 1)), hour]
        fields += [f"{rng.randint(0, 9) * 7 + c:x}" for c in range(21)]
        fields[-2] = "-1"
        lines.append(",".join(fields))
    return lines


def write(path, lines, header=HEADER):
    text = "".join(ln + "\n" for ln in ([header] if header else []) + lines)
    path.write_text(text)
    return str(path)


def python_parse(line):
    """Independent reference: `str.split(',')`."""
    fields = line.split(",")
    assert len(fields) == 24
    return float(fields[1]), float(int(fields[2][6:8])), fields[3:]


def collect(dataset):
    dense, categorical, label = [], [], []
    for features, y in dataset:
        dense.append(features["dense"].numpy())
        categorical.append(features["categorical"].numpy())
        label.append(y.numpy())
    return (
        np.concatenate(dense),
        np.concatenate(categorical).astype(str),
        np.concatenate(label),
    )


def assert_rows_equal(dense, categorical, label, lines):
    assert dense.shape == (len(lines), 1)
    assert categorical.shape == (len(lines), 21)
    for i, line in enumerate(lines):
        y, hour_of_day, tokens = python_parse(line)
        assert label[i, 0] == y
        assert dense[i, 0] == hour_of_day
        assert list(categorical[i]) == tokens


def test_schema_is_rm3_layout():
    assert AVAZU_SCHEMA.num_dense == 1
    assert AVAZU_SCHEMA.num_categorical == 21
    assert AVAZU_SCHEMA.categorical_names[0] == "C1"
    assert AVAZU_SCHEMA.categorical_names[-1] == "C21"
    assert "id" not in AVAZU_SCHEMA.categorical_names
    assert "hour" not in AVAZU_SCHEMA.categorical_names


def test_real_sample_parses_exactly():
    path = avazu_sample()
    with open(path) as f:
        header, *lines = f.read().splitlines()
    assert header == HEADER
    dense, categorical, label = collect(avazu_dataset(path, 1000))
    assert len(label) == 9_999 == len(lines)
    clicks = sum(line.split(",")[1] == "1" for line in lines)
    assert int(label.sum()) == clicks
    assert abs(clicks / 9_999 - 0.171) < 0.0005
    rows = [0, 1, 999, 1000, 5_000, 9_998]
    rows += random.Random(2).sample(range(9_999), 20)
    assert_rows_equal(
        dense[rows], categorical[rows], label[rows], [lines[i] for i in rows]
    )
    # The sample is all from hour 14102100.
    assert np.all(dense == 0.0)


def test_real_sample_time_split():
    path = avazu_sample()
    train = avazu_dataset(path, 1024, split="train", val_fraction=0.2)
    val = make_dataset("avazu", path, 1024, split="val", val_fraction=0.2)
    with open(path) as f:
        lines = f.read().splitlines()[1:]
    # round(9999 * 0.2) = 2000 rows of validation, at the end.
    assert_rows_equal(*collect(val), lines[7_999:])
    assert len(collect(train)[2]) == 7_999


def test_gzip_and_several_files(tmp_path):
    lines = make_lines(12)
    first = write(tmp_path / "a.csv", lines[:5])
    second = tmp_path / "b.csv.gz"
    text = "".join(ln + "\n" for ln in [HEADER] + lines[5:])
    second.write_bytes(gzip.compress(text.encode()))
    rows = collect(avazu_dataset([first, str(second)], 4))
    assert_rows_equal(*rows, lines)


def test_header_is_validated_at_construction(tmp_path):
    wrong = HEADER.replace("click", "clicked")
    path = write(tmp_path / "bad_header.csv", make_lines(3), header=wrong)
    with pytest.raises(DataFormatError) as info:
        avazu_dataset(path, 4)
    assert info.value.line == 1
    assert "header does not match the avazu format" in str(info.value)
    no_header = write(tmp_path / "no_header.csv", make_lines(3), header=None)
    with pytest.raises(DataFormatError, match="line 1: the header"):
        avazu_dataset(no_header, 4)
    only_header = write(tmp_path / "only_header.csv", [])
    with pytest.raises(DataFormatError, match="the file has no data rows"):
        avazu_dataset(only_header, 4)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFormatError, match="the file is empty"):
        avazu_dataset(str(empty), 4)
    with pytest.raises(FileNotFoundError):
        avazu_dataset(str(tmp_path / "missing.csv"), 4)


def _replace(line, index, value):
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)


BAD_LINES = [
    (
        lambda ln: ln + ",7",
        None,
        "expected 24 comma-separated fields, found 25",
    ),
    (
        lambda ln: _replace(ln, 1, "yes"),
        "click",
        "expected 0 or 1, found `yes`",
    ),
    (
        lambda ln: _replace(ln, 2, "1410210"),
        "hour",
        "expected YYMMDDHH with HH 00-23, found `1410210`",
    ),
    (
        lambda ln: _replace(ln, 2, "14102124"),
        "hour",
        "expected YYMMDDHH with HH 00-23, found `14102124`",
    ),
]


@pytest.mark.parametrize("case", range(len(BAD_LINES)))
def test_bad_line_error_names_file_line_and_defect(tmp_path, case):
    corrupt, column, defect = BAD_LINES[case]
    lines = make_lines(6)
    lines[2] = corrupt(lines[2])
    path = write(tmp_path / "day.csv", lines)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        collect(avazu_dataset(path, 4))
    error = DataFormatError.from_exception(info.value)
    # The header is line 1: data row 2 (0-based) is line 4.
    assert (error.file, error.line, error.column) == (path, 4, column)
    assert error.defect == defect


def test_bad_lines_skipped_and_counted(tmp_path, capfd):
    lines = make_lines(20, seed=1)
    corrupted = list(lines)
    for i, (corrupt, _, _) in enumerate(BAD_LINES):
        corrupted[4 * i + 1] = corrupt(lines[4 * i + 1])
    path = write(tmp_path / "day.csv", corrupted)
    ds = avazu_dataset(path, 3, on_bad_lines="skip")
    good = [ln for i, ln in enumerate(lines) if i % 4 != 1 or i > 13]
    assert_rows_equal(*collect(ds), good)
    assert ds.read_stats.skipped_lines == len(BAD_LINES)
    err = capfd.readouterr().err
    for i, (_, column, defect) in enumerate(BAD_LINES):
        where = f", column {column}" if column else ""
        assert f"day.csv, line {4 * i + 3}{where}: {defect}" in err
