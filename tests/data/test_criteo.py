"""Criteo reader: exact parsing against a plain-Python reference, file
handling, splits and bad-line policies."""

import collections
import gzip
import math
import random

import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.data import DataFormatError
from keras_adrec.data import ReadStats
from keras_adrec.data import criteo_dataset
from keras_adrec.data import make_dataset
from keras_adrec.data import make_train_val_datasets
from keras_adrec.data import raise_data_format_errors
from tests.samples import shared_data_file

CRITEO_SAMPLE = "criteo/train_head10k.txt"


def criteo_sample():
    path = shared_data_file(CRITEO_SAMPLE)
    if path is None:
        pytest.skip(f"real data sample {CRITEO_SAMPLE} is absent")
    return str(path)


def make_lines(count, seed=0):
    """Valid Criteo lines: labels, counts (some empty or negative), hex."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        fields = [str(rng.randint(0, 1))]
        for _ in range(13):
            roll = rng.random()
            fields.append("" if roll < 0.2 else str(rng.randint(-3, 5000)))
        for column in range(26):
            roll = rng.random()
            token = f"{rng.randint(0, 6) * 7919 + column:08x}"
            fields.append("" if roll < 0.1 else token)
        lines.append("\t".join(fields))
    return lines


def write(path, lines, compress=False):
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if compress:
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def python_parse(line):
    """Independent reference: `str.split('\\t')` and `float()`."""
    fields = line.split("\t")
    assert len(fields) == 40
    dense = [float(x) if x else math.nan for x in fields[1:14]]
    return float(fields[0]), dense, fields[14:]


def collect(dataset):
    """All rows of a dataset as numpy arrays (dense, categorical, label)."""
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
    assert dense.shape == (len(lines), 13)
    for i, line in enumerate(lines):
        y, d, c = python_parse(line)
        assert label[i, 0] == y
        np.testing.assert_array_equal(dense[i], np.array(d, np.float32))
        assert list(categorical[i]) == c


# ------------------------------------------------------------ real data


def test_real_sample_parses_exactly():
    path = criteo_sample()
    with open(path) as f:
        lines = f.read().splitlines()
    dense, categorical, label = collect(criteo_dataset(path, 512))
    assert len(label) == 10_000 == len(lines)
    clicks = sum(line.split("\t")[0] == "1" for line in lines)
    assert int(label.sum()) == clicks
    assert abs(clicks / 10_000 - 0.218) < 0.0005
    assert label.dtype == np.float32 and label.shape == (10_000, 1)
    assert dense.dtype == np.float32
    rows = [0, 1, 2, 511, 512, 4_999, 7_999, 8_000, 9_998, 9_999]
    rows += random.Random(1).sample(range(10_000), 20)
    assert_rows_equal(
        dense[rows], categorical[rows], label[rows], [lines[i] for i in rows]
    )
    # Empty fields: NaN for counts, "" for categories, in the same places.
    empty_dense = sum(x == "" for ln in lines for x in ln.split("\t")[1:14])
    assert int(np.isnan(dense).sum()) == empty_dense
    empty_categorical = sum(
        x == "" for ln in lines for x in ln.split("\t")[14:]
    )
    assert int((categorical == "").sum()) == empty_categorical


def test_real_sample_time_split_is_first_8000_and_last_2000():
    path = criteo_sample()
    with open(path) as f:
        lines = f.read().splitlines()
    train, val = make_train_val_datasets("criteo", path, 256, val_fraction=0.2)
    train_rows = collect(train)
    val_rows = collect(val)
    assert len(train_rows[2]) == 8_000 and len(val_rows[2]) == 2_000
    assert_rows_equal(*train_rows, lines[:8_000])
    assert_rows_equal(*val_rows, lines[8_000:])


# ------------------------------------------------------------ files


def test_gzip_and_directory_of_days_in_natural_order(tmp_path):
    days = tmp_path / "days"
    days.mkdir()
    all_lines = []
    # day_10 must come after day_2: natural, not lexicographic, order.
    for day in (0, 1, 2, 10):
        lines = make_lines(7 + day, seed=day)
        write(days / f"day_{day}", lines, compress=day == 1)
        all_lines += lines
    (days / ".hidden").write_text("not data\n")
    rows = collect(criteo_dataset(str(days), 5))
    assert_rows_equal(*rows, all_lines)

    gz = write(tmp_path / "one.txt.gz", all_lines[:9], compress=True)
    assert_rows_equal(*collect(criteo_dataset(gz, 4)), all_lines[:9])
    # A list of files keeps the given order; batches cross file ends.
    plain = write(tmp_path / "b.txt", all_lines[9:12])
    batches = list(criteo_dataset([plain, gz], 4))
    assert [len(y) for _, y in batches] == [4, 4, 4]
    assert_rows_equal(*collect(batches), all_lines[9:12] + all_lines[:9])


def test_batches_drop_remainder_repeat_and_static_shapes(tmp_path):
    path = write(tmp_path / "a.txt", make_lines(10))
    sizes = [len(y) for _, y in criteo_dataset(path, 4)]
    assert sizes == [4, 4, 2]
    ds = criteo_dataset(path, 4, drop_remainder=True)
    assert [len(y) for _, y in ds] == [4, 4]
    assert ds.element_spec[0]["dense"].shape.as_list() == [4, 13]
    ds = criteo_dataset(path, 4, repeat=True, drop_remainder=True)
    assert sum(1 for _ in ds.take(7)) == 7


def test_shuffle_keeps_every_row_and_is_seeded(tmp_path):
    lines = make_lines(50)
    path = write(tmp_path / "a.txt", lines)
    first = collect(criteo_dataset(path, 8, shuffle_buffer=64, seed=3))
    again = collect(criteo_dataset(path, 8, shuffle_buffer=64, seed=3))
    np.testing.assert_array_equal(first[1], again[1])
    in_order = collect(criteo_dataset(path, 8))
    assert sorted(map(tuple, first[1])) == sorted(map(tuple, in_order[1]))
    assert not np.array_equal(first[1], in_order[1])


def test_num_parallel_files_interleaves_all_rows(tmp_path):
    paths = [
        write(tmp_path / f"day_{d}", make_lines(9, seed=d)) for d in range(3)
    ]
    rows = collect(criteo_dataset(paths, 4, num_parallel_files=3))
    expected = collect(criteo_dataset(paths, 4))
    assert sorted(map(tuple, rows[1])) == sorted(map(tuple, expected[1]))


def test_missing_empty_and_dataless_inputs_fail_at_construction(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        criteo_dataset(str(tmp_path / "nope.txt"), 4)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataFormatError, match="empty.txt: the file is empty"):
        criteo_dataset(str(empty), 4)
    empty_gz = tmp_path / "empty.gz"
    empty_gz.write_bytes(gzip.compress(b""))
    with pytest.raises(DataFormatError, match="the file is empty"):
        criteo_dataset(str(empty_gz), 4)
    folder = tmp_path / "days"
    folder.mkdir()
    (folder / ".keep").write_text("")
    with pytest.raises(FileNotFoundError, match="contains no data files"):
        criteo_dataset(str(folder), 4)
    with pytest.raises(FileNotFoundError, match="day_\\*: no data files match"):
        criteo_dataset(str(tmp_path / "day_*"), 4)
    with pytest.raises(FileNotFoundError, match="No data paths"):
        criteo_dataset([], 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "`batch_size` must be a positive int"),
        ({"on_bad_lines": "warn"}, "`on_bad_lines` must be one of"),
        ({"split": "test"}, "`split` must be one of"),
        ({"split": "val", "val_fraction": 1.0}, "`val_fraction` must be"),
        ({"split_mode": "days"}, "`split_mode` must be one of"),
        ({"shuffle_buffer": -1}, "`shuffle_buffer` must be"),
        ({"num_parallel_files": 0}, "`num_parallel_files` must be"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs, message):
    path = write(tmp_path / "a.txt", make_lines(3))
    args = {"batch_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        criteo_dataset(path, **args)


def test_make_dataset_table():
    with pytest.raises(ValueError, match="Unknown data kind 'kaggle'"):
        make_dataset("kaggle", "x", 4)


# ------------------------------------------------------------ splits


def test_time_split_across_files(tmp_path):
    lines = make_lines(30)
    paths = [
        write(tmp_path / "day_0", lines[:10]),
        write(tmp_path / "day_1", lines[10:17]),
        write(tmp_path / "day_2", lines[17:]),
    ]
    # 30 rows, val_fraction 0.3: the last 9 rows (from day_1's end on).
    train = collect(criteo_dataset(paths, 4, split="train", val_fraction=0.3))
    val = collect(criteo_dataset(paths, 4, split="val", val_fraction=0.3))
    assert_rows_equal(*train, lines[:21])
    assert_rows_equal(*val, lines[21:])
    with pytest.raises(DataFormatError, match="the 'val' split is empty"):
        criteo_dataset(paths[1], 4, split="val", val_fraction=0.01)


def test_random_split_is_seeded_disjoint_and_complete(tmp_path):
    lines = make_lines(400)
    paths = [
        write(tmp_path / "a", lines[:250]),
        write(tmp_path / "b", lines[250:]),
    ]

    def rows(split, seed):
        ds = criteo_dataset(
            paths,
            64,
            split=split,
            split_mode="random",
            seed=seed,
            val_fraction=0.25,
        )
        _, categorical, label = collect(ds)
        return [(float(y[0]),) + tuple(c) for y, c in zip(label, categorical)]

    train, val = rows("train", 7), rows("val", 7)
    assert rows("val", 7) == val  # same seed, same rows, same order
    reference = [python_parse(line) for line in lines]
    everything = [(y,) + tuple(c) for y, _, c in reference]
    assert collections.Counter(train) + collections.Counter(val) == (
        collections.Counter(everything)
    )
    assert 60 < len(val) < 140  # about 25% of 400
    # Order within each split follows the files.
    assert train == [r for r in everything if r in set(train)]
    assert rows("val", 8) != val


# ------------------------------------------------------------ bad lines


def _replace_field(line, index, value):
    fields = line.split("\t")
    fields[index] = value
    return "\t".join(fields)


BAD_LINES = {
    "too_few_fields": (
        lambda ln: ln.rsplit("\t", 1)[0],
        None,
        "expected 40 tab-separated fields, found 39",
    ),
    "too_many_fields": (
        lambda ln: ln + "\t0",
        None,
        "expected 40 tab-separated fields, found 41",
    ),
    "empty_line": (
        lambda ln: "",
        None,
        "expected 40 tab-separated fields, found 1",
    ),
    "decimal_count": (
        lambda ln: _replace_field(ln, 3, "1.5"),
        "I3",
        "expected an integer count or empty, found `1.5`",
    ),
    "count_with_letters": (
        lambda ln: _replace_field(ln, 13, "12abc"),
        "I13",
        "expected an integer count or empty, found `12abc`",
    ),
    "count_with_space": (
        lambda ln: _replace_field(ln, 1, " 4"),
        "I1",
        "expected an integer count or empty, found ` 4`",
    ),
    "category_not_hex": (
        lambda ln: _replace_field(ln, 20, "xyz12345"),
        "C7",
        "expected 8 hex digits or empty, found `xyz12345`",
    ),
    "category_too_short": (
        lambda ln: _replace_field(ln, 39, "abc"),
        "C26",
        "expected 8 hex digits or empty, found `abc`",
    ),
    "label_not_binary": (
        lambda ln: _replace_field(ln, 0, "2"),
        "label",
        "expected 0 or 1, found `2`",
    ),
    "label_empty": (
        lambda ln: _replace_field(ln, 0, ""),
        "label",
        "expected 0 or 1, found ``",
    ),
}


@pytest.mark.parametrize(
    "kind",
    ["too_few_fields", "decimal_count", "category_not_hex", "label_not_binary"],
)
def test_bad_line_stops_reading_with_file_line_and_defect(tmp_path, kind):
    corrupt, column, defect = BAD_LINES[kind]
    lines = make_lines(12)
    lines[6] = corrupt(lines[6])
    path = write(tmp_path / "bad_day.txt", lines)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        for _ in criteo_dataset(path, 4):
            pass
    message = info.value.message
    assert "bad_day.txt, line 7" in message and defect in message
    error = DataFormatError.from_exception(info.value)
    assert (error.file, error.line, error.column) == (path, 7, column)
    assert error.defect == defect
    where = f", column {column}" if column else ""
    assert str(error) == f"{path}, line 7{where}: {defect}"


def test_every_bad_line_kind_is_skipped_counted_and_described(tmp_path, capfd):
    kinds = sorted(BAD_LINES)
    lines = make_lines(3 * len(kinds) + 2, seed=5)
    bad_rows = {3 * i + 1: kind for i, kind in enumerate(kinds)}
    corrupted = list(lines)
    for row, kind in bad_rows.items():
        corrupted[row] = BAD_LINES[kind][0](lines[row])
    path = write(tmp_path / "mixed.txt", corrupted)

    stats = ReadStats(max_reported=20)
    ds = criteo_dataset(path, 8, on_bad_lines="skip", stats=stats)
    assert ds.read_stats is stats and stats.skipped_lines == 0
    good = [ln for i, ln in enumerate(lines) if i not in bad_rows]
    assert_rows_equal(*collect(ds), good)
    assert stats.skipped_lines == len(kinds)
    err = capfd.readouterr().err
    for row, kind in bad_rows.items():
        _, column, defect = BAD_LINES[kind]
        where = f", column {column}" if column else ""
        expected = f"{path}, line {row + 1}{where}: {defect}"
        assert "skipping a malformed line: " + expected in err
    assert f"skipped {len(kinds)} malformed criteo lines in total" in err
    collect(ds)  # a second pass neither counts nor describes them again
    assert stats.skipped_lines == len(kinds)
    again = capfd.readouterr().err
    assert "skipping a malformed line" not in again
    assert "in total" not in again
    stats.reset()
    assert stats.skipped_lines == 0
    capfd.readouterr()

    # Only the first `max_reported` skipped lines are described.
    collect(criteo_dataset(path, 8, on_bad_lines="skip", stats=ReadStats(2)))
    err = capfd.readouterr().err
    assert err.count("skipping a malformed line") == 2

    # The error policy, seen through `raise_data_format_errors`.
    with pytest.raises(DataFormatError) as info:
        with raise_data_format_errors():
            collect(criteo_dataset(path, 8))
    first = min(bad_rows)
    assert info.value.line == first + 1
    assert info.value.defect == BAD_LINES[bad_rows[first]][2]


def test_split_validates_only_its_own_lines(tmp_path):
    lines = make_lines(10)
    lines[9] = "garbage"
    path = write(tmp_path / "a.txt", lines)
    train = collect(criteo_dataset(path, 4, split="train", val_fraction=0.2))
    assert_rows_equal(*train, lines[:8])
    with pytest.raises(tf.errors.InvalidArgumentError, match="line 10"):
        collect(criteo_dataset(path, 4, split="val", val_fraction=0.2))


def test_crlf_line_ends_are_accepted(tmp_path):
    lines = make_lines(5)
    path = tmp_path / "dos.txt"
    path.write_bytes("".join(ln + "\r\n" for ln in lines).encode())
    assert_rows_equal(*collect(criteo_dataset(str(path), 4)), lines)
