import keras
import numpy as np
import pytest

from keras_adrec.layers.sequence import RecurrentContext
from tests.layers.sequence import numpy_references as ref
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip
from tests.test_case import assert_keras_save_load
from tests.test_case import assert_serialization_round_trip


def _inputs(batch=4, length=5, width=6, seed=0):
    rng = np.random.default_rng(seed)
    candidate = rng.normal(size=(batch, width)).astype("float32")
    history = rng.normal(size=(batch, length, width)).astype("float32")
    return candidate, history


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_matches_numpy_reference(cell, num_layers):
    candidate, history = _inputs()
    layer = RecurrentContext(cell=cell, units=3, num_layers=num_layers)
    layer(candidate, history)
    rng = np.random.default_rng(2)
    for recurrent in layer.recurrent_layers:  # non-zero biases
        recurrent.cell.bias.assign(rng.normal(size=recurrent.cell.bias.shape))
    output = layer(candidate, history)
    assert output.shape == (4, 3)
    step = ref.lstm if cell == "lstm" else ref.gru
    sequence = history.astype("float64")
    for recurrent in layer.recurrent_layers:
        sequence = step(recurrent.cell, sequence)
    assert_allclose(output, sequence[:, -1], atol=1e-5, rtol=1e-5)


def test_default_units_is_event_width_and_candidate_unused():
    candidate, history = _inputs(width=5)
    layer = RecurrentContext()
    output = layer(candidate, history)
    assert output.shape == (4, 5)
    assert_allclose(layer(candidate * 0.0 + 7.0, history), output)


def test_context_depends_on_history_order():
    candidate, history = _inputs()
    layer = RecurrentContext(cell="gru")
    assert not np.allclose(
        np.asarray(layer(candidate, history)),
        np.asarray(layer(candidate, history[:, ::-1])),
    )


def test_functional_model_and_saving(tmp_path):
    candidate, history = _inputs()
    inputs = [keras.Input((6,)), keras.Input((5, 6))]
    outputs = RecurrentContext(cell="gru", units=4, num_layers=2)(*inputs)
    assert tuple(outputs.shape) == (None, 4)
    model = keras.Model(inputs, outputs)
    assert_keras_save_load(model, [candidate, history], tmp_path)


def test_config_round_trip():
    layer = RecurrentContext(cell="GRU", units=4, num_layers=3, name="rnn")
    clone = assert_config_round_trip(layer)
    assert clone.cell == "gru" and clone.num_layers == 3
    assert_serialization_round_trip(layer)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "rnn"}, "`cell` must be one of 'lstm', 'gru'"),
        ({"units": 0}, "`units` must be `None` or a positive int"),
        ({"num_layers": 0}, "`num_layers` must be a positive int"),
        ({"num_layers": True}, "`num_layers` must be a positive int"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RecurrentContext(**kwargs)
