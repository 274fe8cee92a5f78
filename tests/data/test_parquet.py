"""Tests of the Parquet reader against the TSV reader and hand-made files."""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from keras_adrec.data import FeaturePreprocessor
from keras_adrec.data import preprocess
from keras_adrec.data.criteo import criteo_dataset
from keras_adrec.data.errors import DataFormatError
from keras_adrec.data.errors import raise_data_format_errors
from keras_adrec.data.parquet import parquet_dataset
from keras_adrec.data.schema import DatasetSchema
from keras_adrec.data.synthetic import SyntheticCriteo


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same synthetic rows as Parquet and as Criteo TSV files."""
    directory = tmp_path_factory.mktemp("synthetic")
    generator = SyntheticCriteo(
        rows_per_day=3000, num_days=2, seed=5, chunk_rows=1024
    )
    parquet = generator.write_parquet(str(directory), row_group_size=700)
    tsv = generator.write_tsv(str(directory))
    return generator, directory, parquet, tsv


def collect(dataset):
    dense, categorical, label, sizes = [], [], [], []
    for features, target in dataset:
        dense.append(features["dense"].numpy())
        categorical.append(features["categorical"].numpy())
        label.append(target.numpy())
        sizes.append(len(target))
    return (
        np.concatenate(dense),
        np.concatenate(categorical),
        np.concatenate(label),
        sizes,
    )


def assert_same_rows(actual, expected):
    np.testing.assert_array_equal(actual[0], expected[0])  # NaN == NaN
    np.testing.assert_array_equal(actual[1], expected[1])
    np.testing.assert_array_equal(actual[2], expected[2])


def test_parquet_rows_equal_tsv_reader_rows(files):
    generator, _, parquet, tsv = files
    from_parquet = collect(parquet_dataset(parquet, batch_size=256))
    from_tsv = collect(criteo_dataset(tsv, batch_size=256))
    assert_same_rows(from_parquet, from_tsv)
    assert from_parquet[0].shape == (6000, 13)
    assert from_parquet[1].shape == (6000, 26)
    assert from_parquet[2].shape == (6000, 1)
    assert np.isnan(from_parquet[0]).any()
    assert (from_parquet[1] == b"").any()
    assert from_parquet[3][:-1] == [256] * (len(from_parquet[3]) - 1)
    # And both equal the generator's own stream.
    assert_same_rows(collect(generator.dataset(batch_size=500)), from_tsv)


def test_small_record_batches_and_directory_input(files):
    _, directory, parquet, _ = files
    expected = collect(parquet_dataset(parquet, batch_size=1000))
    # A directory contributes its Parquet files only (not the TSV files,
    # README.md or metadata.json beside them), in natural name order.
    from_directory = collect(
        parquet_dataset(str(directory), batch_size=97, read_batch_size=333)
    )
    assert_same_rows(from_directory, expected)
    assert from_directory[3][:-1] == [97] * (len(from_directory[3]) - 1)
    _, _, label, sizes = collect(
        parquet_dataset(parquet, batch_size=1000, drop_remainder=True)
    )
    assert sizes == [1000] * 6
    repeated = parquet_dataset(parquet, batch_size=1000, repeat=True)
    assert len(list(repeated.take(8))) == 8


def test_synthetic_parquet_files_say_synthetic(files):
    _, directory, parquet, _ = files
    metadata = pq.ParquetFile(parquet[0]).schema_arrow.metadata
    assert json.loads(metadata[b"keras_adrec.synthetic"])["synthetic"] is True
    with open(directory / "metadata.json") as f:
        listed = json.load(f)["files"]
    assert listed["synthetic_day_0.parquet"] == "parquet"
    assert listed["synthetic_day_1.tsv"] == "tsv"


def test_user_schema_and_column_types(tmp_path):
    table = pa.table(
        {
            "ignored": pa.array(["a", "b", "c"]),
            "click": pa.array([True, False, True]),
            "price": pa.array([1.5, None, -2.0], pa.float64()),
            "count": pa.array([3, 40000000, None], pa.int32()),
            "site": pa.array(["x", None, "x"]).dictionary_encode(),
            "user": pa.array([7, None, 123456789012], pa.int64()),
            "blob": pa.array([b"\x00\xff", b"", b"z"], pa.binary()),
        }
    )
    path = str(tmp_path / "custom.parquet")
    pq.write_table(table, path)
    schema = DatasetSchema(
        name="custom",
        dense_names=["price", "count"],
        categorical_names=["site", "user", "blob"],
        label_name="click",
    )
    dense, categorical, label, _ = collect(
        parquet_dataset(path, batch_size=2, schema=schema)
    )
    np.testing.assert_array_equal(label, [[1.0], [0.0], [1.0]])
    np.testing.assert_array_equal(
        dense,
        np.array(
            [[1.5, 3.0], [np.nan, 40000000.0], [-2.0, np.nan]], np.float32
        ),
    )
    assert categorical.tolist() == [
        [b"x", b"7", b"\x00\xff"],
        [b"", b"", b""],
        [b"x", b"123456789012", b"z"],
    ]


def test_non_utf8_binary_token_names_the_column_when_fitting(tmp_path):
    table = pa.table(
        {
            "click": pa.array([1, 0, 1], pa.int64()),
            "price": pa.array([1.5, 2.0, -2.0], pa.float64()),
            "site": pa.array(["x", "y", "x"]),
            "blob": pa.array([b"ok", b"\x00\xff", b"ok"], pa.binary()),
        }
    )
    path = str(tmp_path / "bytes.parquet")
    pq.write_table(table, path)
    schema = DatasetSchema(
        name="custom",
        dense_names=["price"],
        categorical_names=["site", "blob"],
        label_name="click",
    )
    dataset = parquet_dataset(path, batch_size=2, schema=schema)
    with pytest.raises(ValueError) as info:
        FeaturePreprocessor.fit(dataset, schema)
    message = str(info.value)
    assert "Categorical column blob" in message
    assert "b'\\x00\\xff'" in message and "not UTF-8" in message
    # Hashing mode takes any bytes.
    hashed = FeaturePreprocessor.fit(dataset, schema, max_index_range=97)
    features, _ = next(iter(preprocess(dataset, hashed)))
    assert features["sparse"].shape == (2, 2)


def write_bad(tmp_path, name, table, **kwargs):
    path = str(tmp_path / name)
    pq.write_table(table, path, **kwargs)
    return path


def criteo_like_table(rows=20):
    columns = {"label": pa.array(np.arange(rows) % 2, pa.int64())}
    for i in range(1, 14):
        columns[f"I{i}"] = pa.array(np.arange(rows), pa.int64())
    for i in range(1, 27):
        columns[f"C{i}"] = pa.array([f"{r:08x}" for r in range(rows)])
    return pa.table(columns)


def test_missing_column_names_file_and_column(tmp_path):
    path = write_bad(
        tmp_path, "no_c7.parquet", criteo_like_table().drop_columns(["C7"])
    )
    with pytest.raises(DataFormatError) as info:
        parquet_dataset(path, batch_size=4)
    assert info.value.file == path
    assert info.value.column == "C7"
    assert "missing categorical column `C7`" in str(info.value)


@pytest.mark.parametrize(
    "column, array, expected",
    [
        ("I3", pa.array(["1"] * 20), "found type `string`"),
        ("C2", pa.array([1.5] * 20), "found type `double`"),
        ("label", pa.array(["1"] * 20), "found type `string`"),
    ],
)
def test_wrong_type_names_file_and_column(tmp_path, column, array, expected):
    table = criteo_like_table()
    table = table.set_column(
        table.schema.get_field_index(column), column, array
    )
    path = write_bad(tmp_path, "wrong.parquet", table)
    with pytest.raises(DataFormatError, match=expected) as info:
        parquet_dataset(path, batch_size=4)
    assert info.value.column == column
    assert info.value.file == path


def with_label(table, values):
    return table.set_column(0, "label", pa.array(values))


def test_null_label_found_from_statistics(tmp_path):
    labels = [0, 1] * 10
    labels[13] = None
    path = write_bad(
        tmp_path, "null.parquet", with_label(criteo_like_table(), labels)
    )
    with pytest.raises(DataFormatError, match="null labels") as info:
        parquet_dataset(path, batch_size=4)
    assert info.value.column == "label"
    assert info.value.file == path


@pytest.mark.parametrize(
    "bad, defect",
    [(None, "the label is null"), (2, "expected 0 or 1, found `2`")],
)
def test_bad_label_without_statistics_fails_while_reading(
    tmp_path, bad, defect
):
    labels = [0, 1] * 10
    labels[13] = bad
    path = write_bad(
        tmp_path,
        "bad_label.parquet",
        with_label(criteo_like_table(), labels),
        write_statistics=False,
    )
    dataset = parquet_dataset(path, batch_size=4, read_batch_size=8)
    with pytest.raises(DataFormatError) as info:
        with raise_data_format_errors():
            for _ in dataset:
                pass
    assert info.value.file == path
    assert info.value.line == 14  # 1-based row number in the file
    assert info.value.column == "label"
    assert defect in info.value.defect


def test_out_of_range_label_found_from_statistics(tmp_path):
    path = write_bad(
        tmp_path,
        "range.parquet",
        with_label(criteo_like_table(), [0, 1] * 9 + [3, 1]),
    )
    with pytest.raises(DataFormatError, match="expected labels 0 or 1"):
        parquet_dataset(path, batch_size=4)


def test_not_parquet_and_missing_paths(tmp_path):
    text = tmp_path / "day_0.parquet"
    text.write_text("0\t1\t2\n")
    with pytest.raises(DataFormatError, match="not a readable Parquet"):
        parquet_dataset(str(text), batch_size=4)
    with pytest.raises(FileNotFoundError):
        parquet_dataset(str(tmp_path / "absent.parquet"), batch_size=4)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no data")
    with pytest.raises(FileNotFoundError, match="no Parquet files"):
        parquet_dataset(str(empty), batch_size=4)
    with pytest.raises(ValueError, match="`batch_size`"):
        parquet_dataset(str(text), batch_size=0)


def test_element_spec(files):
    _, _, parquet, _ = files
    features, label = parquet_dataset(parquet, batch_size=8).element_spec
    assert features["dense"] == tf.TensorSpec([None, 13], tf.float32)
    assert features["categorical"] == tf.TensorSpec([None, 26], tf.string)
    assert label == tf.TensorSpec([None, 1], tf.float32)
    assert os.path.basename(parquet[0]) == "synthetic_day_0.parquet"
