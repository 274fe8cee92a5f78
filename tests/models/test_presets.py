"""Presets are typed: fields by name, type and range, checked on creation."""

import dataclasses
import json

import pytest

from keras_adrec.models import PRESETS
from keras_adrec.models import RankingPreset
from keras_adrec.models import SequentialPreset
from keras_adrec.models import get_preset
from keras_adrec.models import preset_from_dict


def test_get_preset_returns_the_typed_object():
    config = get_preset("rm1", num_heads=4)
    assert isinstance(config, RankingPreset)
    assert config.num_heads == 4 and config.name == "rm1"
    assert isinstance(get_preset("RM5"), SequentialPreset)
    assert get_preset("rm5").sequence_layer == "mha"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.num_heads = 8
    # The registry's object is unchanged by an override.
    assert PRESETS["rm1"].num_heads == 2


def test_unknown_field_names_it_and_the_known_ones():
    with pytest.raises(ValueError, match="foo") as error:
        get_preset("rm1", foo=1)
    assert "Known fields: activation, batch_size" in str(error.value)
    with pytest.raises(ValueError, match="Unknown preset field"):
        get_preset("rm1", sequence_layer="tsl")
    with pytest.raises(ValueError, match="Unknown preset field"):
        get_preset("rm1", name="mine")


def test_an_int_is_a_float_and_a_list_a_tuple():
    config = get_preset("rm1", learning_rate=1, dropout=0, top_units=[8, 4])
    assert config.learning_rate == 1.0 and type(config.learning_rate) is float
    assert config.dropout == 0.0 and type(config.dropout) is float
    assert config.top_units == (8, 4)
    assert get_preset("rm1", mask_thresholds=[0, 0.1]).mask_thresholds == (
        0.0,
        0.1,
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_heads": 1.5}, "`num_heads` must be an int"),
        ({"num_heads": "2"}, "`num_heads` must be an int"),
        ({"epochs": True}, "`epochs` must be an int"),
        ({"use_layer_norm": 1}, "`use_layer_norm` must be a bool"),
        ({"learning_rate": "0.1"}, "`learning_rate` must be a float"),
        ({"bottom_units": [8.5]}, "`bottom_units` must be a list of int"),
        ({"mask_thresholds": ["a"]}, "`mask_thresholds` must be a str"),
        ({"max_index_range": 1.0}, "`max_index_range` must be an int or"),
    ],
)
def test_wrong_types_are_refused_not_coerced(change, message):
    with pytest.raises(TypeError, match=message):
        get_preset("rm1", **change)


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", 0),
        ("epochs", 0),
        ("learning_rate", -0.1),
        ("learning_rate", 0),
        ("num_heads", 0),
        ("embedding_dim", -16),
        ("ffn_dim", 0),
        ("num_layers", 0),
        ("min_frequency", 0),
        ("max_index_range", 0),
        ("mask_warmup_steps", -1),
        ("learning_rate_warmup_steps", -1),
        ("embedding_l2", -1e-5),
        ("init_gain", 0.0),
        ("layer_norm_epsilon", 0.0),
        ("dropout", 1.0),
        ("dropout", -0.1),
        ("bottom_units", [8, 0]),
        ("mask_thresholds", [0.1, 1.0]),
        ("interaction", "cross"),
    ],
)
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        get_preset("rm1", **{field: value})


def test_sequential_fields_are_checked():
    with pytest.raises(ValueError, match="`sequence_layer`"):
        get_preset("rm4", sequence_layer="lstm")
    with pytest.raises(ValueError, match="`history_length`"):
        get_preset("rm4", history_length=0)
    with pytest.raises(ValueError, match="`sequence_dropout`"):
        get_preset("rm4", sequence_dropout=1.5)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_serialized_form_is_a_json_dict_that_reads_back(name):
    config = get_preset(name, num_heads=4, embedding_dim=32)
    serialized = json.loads(json.dumps(config.to_dict()))
    assert serialized == config.get_config()
    assert isinstance(serialized["top_units"], list)
    assert preset_from_dict(serialized) == config


def test_older_config_json_without_newer_fields_still_reads():
    old = get_preset("rm1").to_dict()
    for newer in (
        "optimizer_config",
        "learning_rate_warmup_steps",
        "embedding_l2",
    ):
        old.pop(newer)
    assert preset_from_dict(old) == get_preset("rm1")
    # A field added later reads as the value older models were built with,
    # even where the named preset's default has moved since.
    changed = get_preset("rm1", init_gain=0.5, layer_norm_epsilon=0.1)
    older = changed.to_dict()
    older.pop("init_gain")
    older.pop("layer_norm_epsilon")
    read = preset_from_dict(older)
    assert read.init_gain == 1.0 and read.layer_norm_epsilon == 1e-5
    custom = {"name": "custom", "embedding_dim": 8, "final_units": [4]}
    assert isinstance(preset_from_dict(custom), SequentialPreset)
    with pytest.raises(ValueError, match="Unknown preset field"):
        preset_from_dict({"name": "custom", "no_such_field": 1})


@pytest.mark.parametrize("name", ["rm1", "rm2", "rm3"])
def test_ranking_presets_share_rare_values_and_keep_the_paper_one_step_away(
    name,
):
    # Robustness protocol, stage R4: values seen once share the OOV row.
    assert get_preset(name).min_frequency == 2
    paper = get_preset(name, min_frequency=1)
    assert paper.min_frequency == 1
    assert paper.replace(min_frequency=2) == get_preset(name)


@pytest.mark.parametrize("name", ["rm1", "rm2", "rm3"])
def test_ranking_presets_start_adrec_at_gain_one_over_root_two(name):
    # Robustness protocol, stage R6: Glorot with gain 1/sqrt(2).
    assert get_preset(name).init_gain == pytest.approx(0.70710678)
    assert get_preset(name, init_gain=1.0).init_gain == 1.0
    # Sequential presets keep Keras' Glorot: smaller gains failed the
    # sequential protocol's gate (benchmarks/sequential_defaults_protocol.md).
    assert get_preset("rm4").init_gain == 1.0


def test_init_gain_scales_adrec_kernels_and_epsilon_reaches_the_norms():
    import keras
    import numpy as np

    from keras_adrec.models import RankingModel

    def block(**fields):
        keras.utils.set_random_seed(3)
        model = RankingModel.from_preset(
            get_preset("rm1", **fields), [50] * 26, 13
        )
        model.build()
        return model.interaction.blocks[0]

    for gain in (1.0, 0.5):
        kernels = [
            w
            for w in block(init_gain=gain).weights
            if w.path.endswith("kernel")
        ]
        # query, key, value, output, two feed-forward
        assert len(kernels) == 6
        for kernel in kernels:
            values = np.asarray(kernel.numpy())
            if values.ndim == 2:  # feed-forward (in, out)
                fan_in, fan_out = values.shape
            elif "attention_output" in kernel.path:  # (heads, head, out)
                fan_in, fan_out = (
                    values.shape[0] * values.shape[1],
                    values.shape[2],
                )
            else:  # query, key, value (in, heads, head)
                fan_in, fan_out = (
                    values.shape[0],
                    values.shape[1] * values.shape[2],
                )
            limit = gain * np.sqrt(6.0 / (fan_in + fan_out))
            # Glorot uniform of that gain: U(-limit, limit).
            assert np.abs(values).max() <= limit, kernel.path
            assert np.abs(values).max() > 0.9 * limit, kernel.path
    eps = block(layer_norm_epsilon=0.1)
    assert eps.attention_norm.epsilon == 0.1 and eps.ffn_norm.epsilon == 0.1
