"""A user's table: schema files, the Parquet/CSV reader, multi-hot ids."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from keras_adrec.data import DataFormatError
from keras_adrec.data import MultiHotLookup
from keras_adrec.data import SchemaFileError
from keras_adrec.data import TableSchema
from keras_adrec.data import load_table_data
from keras_adrec.data import load_table_schema
from keras_adrec.data import table_dataset

SCHEMA = TableSchema(
    label="clicked",
    dense=("I1",),
    categorical=("C1",),
    multi_hot=("tags", "hist"),
    group="user",
)


def _table(rows=5, clicked=None):
    return pa.table(
        {
            "clicked": clicked or [1, 0, 1, 0, 1][:rows],
            "I1": pa.array([1.0, None, 3.0, 4.0, 5.0][:rows]),
            "C1": ["a", "b", None, "a", "c"][:rows],
            "tags": pa.array(
                [["x", "y"], [], None, ["z"], ["x"]][:rows],
                pa.list_(pa.string()),
            ),
            "hist": pa.array(
                [[1, 2], [3], [], [4, 5, 6], [1]][:rows], pa.list_(pa.int64())
            ),
            "user": [7, 7, 8, 8, 9][:rows],
        }
    )


def _rows(dataset):
    out = {"label": [], "dense": [], "categorical": [], "group": []}
    out["tags"], out["hist"] = [], []
    for features, label in dataset:
        out["label"] += label.numpy().ravel().tolist()
        out["dense"] += features["dense"].numpy()[:, 0].tolist()
        out["categorical"] += features["categorical"].numpy()[:, 0].tolist()
        out["group"] += features["group"].numpy().tolist()
        out["tags"] += features["multi_hot"][0].to_list()
        out["hist"] += features["multi_hot"][1].to_list()
    return out


def test_parquet_rows_nulls_and_lists(tmp_path):
    pq.write_table(_table(), tmp_path / "t.parquet", row_group_size=2)
    rows = _rows(table_dataset(tmp_path / "t.parquet", 2, SCHEMA))
    assert rows["label"] == [1, 0, 1, 0, 1]
    np.testing.assert_array_equal(rows["dense"], [1, np.nan, 3, 4, 5])
    assert rows["categorical"] == [b"a", b"b", b"", b"a", b"c"]
    assert rows["tags"] == [[b"x", b"y"], [], [], [b"z"], [b"x"]]
    assert rows["hist"] == [
        [b"1", b"2"],
        [b"3"],
        [],
        [b"4", b"5", b"6"],
        [b"1"],
    ]
    assert rows["group"] == [b"7", b"7", b"8", b"8", b"9"]


def test_directory_of_files_in_order_and_time_split(tmp_path):
    table = _table()
    pq.write_table(table.slice(0, 2), tmp_path / "part-0.parquet")
    pq.write_table(table.slice(2), tmp_path / "part-1.parquet")
    whole = _rows(table_dataset(tmp_path, 3, SCHEMA))
    # Batches run across files: 2 + 3 rows make batches of 3 and 2.
    sizes = [int(y.shape[0]) for _, y in table_dataset(tmp_path, 3, SCHEMA)]
    assert sizes == [3, 2]
    assert whole["categorical"] == [b"a", b"b", b"", b"a", b"c"]
    train = _rows(table_dataset(tmp_path, 3, SCHEMA, split="train"))
    val = _rows(table_dataset(tmp_path, 3, SCHEMA, split="val"))
    assert train["categorical"] == [b"a", b"b", b"", b"a"]  # 80%
    assert val["categorical"] == [b"c"]


def test_csv_joins_list_values_with_a_bar(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "clicked,I1,C1,tags,hist,user\n"
        "1,2,a,x|y,1,u1\n"
        "0,,7,,,u2\n"
        "1,3,b,z||w,2|3,u1\n"
    )
    rows = _rows(table_dataset(path, 8, SCHEMA, file_format="csv"))
    assert rows["label"] == [1, 0, 1]
    np.testing.assert_array_equal(rows["dense"], [2, np.nan, 3])
    assert rows["categorical"] == [b"a", b"7", b"b"]
    assert rows["tags"] == [[b"x", b"y"], [], [b"z", b"w"]]
    assert rows["hist"] == [[b"1"], [], [b"2", b"3"]]


def test_missing_column_names_column_and_file(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(_table().drop(["tags"]), path)
    with pytest.raises(DataFormatError, match="missing multi_hot column") as e:
        table_dataset(path, 2, SCHEMA)
    assert e.value.column == "tags" and e.value.file == str(path)


def test_wrong_type_names_column_and_file(tmp_path):
    path = tmp_path / "t.parquet"
    table = _table().set_column(1, "I1", pa.array(["1", "2", "3", "4", "5"]))
    pq.write_table(table, path)
    with pytest.raises(DataFormatError, match="found type `string`") as e:
        table_dataset(path, 2, SCHEMA)
    assert e.value.column == "I1" and e.value.file == str(path)
    pq.write_table(_table().set_column(3, "tags", pa.array(["x"] * 5)), path)
    with pytest.raises(DataFormatError, match="list<string>"):
        table_dataset(path, 2, SCHEMA)


def test_label_not_0_or_1_names_the_row(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(_table(clicked=[1, 0, 2, 0, 1]), path)
    with pytest.raises(tf.errors.InvalidArgumentError, match="row|line 3"):
        _rows(table_dataset(path, 2, SCHEMA))
    with pytest.raises(DataFormatError) as e:
        load_table_data(f"parquet:{path}", SCHEMA)
    assert (e.value.line, e.value.column) == (3, "clicked")
    assert e.value.file == str(path)


def test_empty_lists_everywhere_are_an_error(tmp_path):
    path = tmp_path / "t.parquet"
    table = _table().set_column(
        3, "tags", pa.array([[]] * 5, pa.list_(pa.string()))
    )
    pq.write_table(table, path)
    with pytest.raises(DataFormatError, match="every list") as e:
        load_table_data(f"parquet:{path}", SCHEMA)
    assert e.value.column == "tags" and str(path) in e.value.file


def test_load_table_data_yields_model_inputs_and_groups(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(_table(), path)
    loaded = load_table_data(f"parquet:{path}", SCHEMA, val_fraction=0.4)
    lookup = loaded.multi_hot_lookup
    # The first 3 rows train: tags x, y; hist 1, 2, 3 (ties by token).
    assert lookup.vocabularies == [["x", "y"], ["1", "2", "3"]]
    assert lookup.vocabulary_sizes == [3, 4]  # OOV included
    (inputs, label), *_ = list(loaded.train)
    np.testing.assert_array_equal(
        inputs["multi_hot"][:, 0].numpy(),
        [[1, 2], [-1, -1], [-1, -1]],
    )
    inputs, label, group = next(iter(loaded.val))
    assert group.numpy().tolist() == [b"8", b"9"]
    # Val's "z" and hist values 4, 5, 6 are out of vocabulary (0);
    # every bag is padded to the longest (3).
    np.testing.assert_array_equal(
        inputs["multi_hot"].numpy(),
        [[[0, -1, -1], [0, 0, 0]], [[1, -1, -1], [1, -1, -1]]],
    )
    assert set(inputs) == {"dense", "sparse", "multi_hot"}


def test_multi_hot_lookup_ids_and_artifacts(tmp_path):
    lookup = MultiHotLookup(["a", "b"], [["x", "y"], ["1"]])
    bags = [
        tf.ragged.constant([["y", "q"], []]),
        tf.ragged.constant([["1", "1", "1"], ["2"]]),
    ]
    expected = [[[2, 0, -1], [1, 1, 1]], [[-1, -1, -1], [0, -1, -1]]]
    np.testing.assert_array_equal(lookup(bags).numpy(), expected)
    lookup.save_artifacts(tmp_path)
    again = MultiHotLookup.load_artifacts(tmp_path)
    np.testing.assert_array_equal(again(bags).numpy(), expected)
    assert MultiHotLookup.from_config(lookup.get_config()).vocabularies == [
        ["x", "y"],
        ["1"],
    ]


def test_schema_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA.to_dict()))
    assert load_table_schema(path) == SCHEMA
    minimal = TableSchema.from_dict({"label": "y", "categorical": ["c"]})
    assert minimal.columns == ("y", "c") and minimal.group is None
    # The group may also be a feature (a user id often is).
    grouped = TableSchema(label="y", categorical=("u", "c"), group="u")
    assert grouped.columns == ("y", "u", "c")
    for text, message in [
        ('{"label": "y", "dense": ["a"], "tags": []}', "Unknown schema key"),
        ('{"dense": ["a"]}', "no `label`"),
        ('{"label": "y"}', "no feature column"),
        ('{"label": "y", "dense": "a"}', "list of column names"),
        ('{"label": "y", "dense": ["a"], "categorical": ["a"]}', "one role"),
        ('{"label": "y", "dense": ["a"], "combiner": "max"}', "combiner"),
        ('{"label": "y", "dense": ["a"], "group": "y"}', "cannot be the label"),
        ('{"label": "y", "dense": ["a"], "group": ""}', "non-empty"),
        ('{"label": "y",', "not JSON"),
    ]:
        path.write_text(text)
        with pytest.raises(SchemaFileError, match=message) as e:
            load_table_schema(path)
        assert str(path) in str(e.value)
