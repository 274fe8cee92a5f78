"""DatasetSchema: the column layouts of Criteo and Avazu."""

import pytest

from keras_adrec.data import AVAZU_SCHEMA
from keras_adrec.data import CRITEO_SCHEMA
from keras_adrec.data import DATA_KINDS
from keras_adrec.data import DatasetSchema
from keras_adrec.data import schema_for


def test_known_schemas():
    assert (CRITEO_SCHEMA.num_dense, CRITEO_SCHEMA.num_categorical) == (13, 26)
    assert CRITEO_SCHEMA.dense_names[0] == "I1"
    assert CRITEO_SCHEMA.categorical_names[-1] == "C26"
    assert (AVAZU_SCHEMA.num_dense, AVAZU_SCHEMA.num_categorical) == (1, 21)
    assert AVAZU_SCHEMA.label_name == "click"
    assert DATA_KINDS["criteo"].schema is CRITEO_SCHEMA
    assert schema_for("avazu") is AVAZU_SCHEMA


def test_dict_round_trip_and_lists():
    schema = DatasetSchema("toy", ("a",), ("b", "c"), "y")
    assert schema.dense_names == ["a"]
    assert DatasetSchema.from_dict(schema.to_dict()) == schema


@pytest.mark.parametrize(
    "dense, categorical, message",
    [
        ([], [], "at least one dense or categorical column"),
        (["a"], ["a"], "must be unique"),
        ([""], ["b"], "non-empty strings"),
    ],
)
def test_invalid_schemas(dense, categorical, message):
    with pytest.raises(ValueError, match=message):
        DatasetSchema("bad", dense, categorical)
