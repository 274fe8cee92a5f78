"""DataFormatError: its one-line text and its recovery from TF errors."""

import pickle

import pytest
import tensorflow as tf

from keras_adrec.data import DataFormatError
from keras_adrec.data import raise_data_format_errors
from keras_adrec.data.errors import graph_message


def test_text_and_attributes():
    error = DataFormatError("/d/day_0", 12, "expected 0 or 1, found `2`", "x")
    assert (
        str(error) == "/d/day_0, line 12, column x: expected 0 or 1, found `2`"
    )
    assert isinstance(error, ValueError)
    assert str(DataFormatError("/d/e.txt", None, "the file is empty")) == (
        "/d/e.txt: the file is empty"
    )
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.file, clone.line, clone.column, clone.defect) == (
        "/d/day_0", 12, "x", "expected 0 or 1, found `2`",
    )  # fmt: skip


@pytest.mark.parametrize(
    "file, value",
    [
        ("/data/day_0", "1.5"),
        ("/tmp/with 'quotes' and \\ back/ü.txt", 'say "hi" ]'),
    ],
)
def test_recovered_from_a_graph_assertion(file, value):
    """The message survives TF's escaping inside `InvalidArgumentError`."""

    def check(_):
        message = graph_message(
            tf.constant(file),
            tf.constant(7, tf.int64),
            tf.constant("I3"),
            tf.strings.join(["expected an integer, found `", value, "`"]),
        )
        with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
            return tf.constant(0)

    dataset = tf.data.Dataset.range(1).map(check)
    with pytest.raises(DataFormatError) as info:
        with raise_data_format_errors():
            list(dataset)
    error = info.value
    assert isinstance(error.__cause__, tf.errors.InvalidArgumentError)
    assert (error.file, error.line, error.column) == (file, 7, "I3")
    assert error.defect == f"expected an integer, found `{value}`"


def test_other_errors_pass_through():
    assert DataFormatError.from_exception(ValueError("no")) is None
    with pytest.raises(tf.errors.InvalidArgumentError):
        with raise_data_format_errors():
            tf.debugging.assert_equal(1, 2)
