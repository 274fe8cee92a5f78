"""The search space: every hyperparameter, its preset default, overrides."""

import json

import keras_tuner as kt
import pytest

from keras_adrec.models import RankingModel
from keras_adrec.models import get_preset
from keras_adrec.tuning import HYPERPARAMETERS
from keras_adrec.tuning import AdRecSearchSpace
from keras_adrec.tuning import RankingHyperModel
from keras_adrec.tuning import mask_schedule_spec
from keras_adrec.tuning import resolve_mask_schedule
from keras_adrec.tuning.search_space import divisors

# The constructor arguments each hyperparameter sets (the names must match).
ADREC_ARGUMENTS = (
    "num_layers",
    "num_heads",
    "ffn_dim",
    "dropout",
    "mask_thresholds",
    "mask_rule",
    "min_keys",
    "mask_warmup_steps",
    "activation",
    "norm_first",
)


def _declared(space):
    hp = kt.HyperParameters()
    fields = space.declare(hp)
    return hp, fields


def _hp(hp, name):
    found = [p for p in hp.space if p.name == name]
    assert found, name
    return found


def test_names_are_constructor_arguments():
    import inspect

    from keras_adrec.layers import AdRecInteraction

    arguments = inspect.signature(AdRecInteraction.__init__).parameters
    assert set(ADREC_ARGUMENTS) <= set(arguments)
    assert set(HYPERPARAMETERS) == set(ADREC_ARGUMENTS) | {"learning_rate"}


@pytest.mark.parametrize("preset", ["rm1", "rm2", "rm3"])
def test_every_hyperparameter_defaults_to_the_preset(preset):
    fields = get_preset(preset)
    hp, trial_fields = _declared(AdRecSearchSpace(fields))
    assert set(hp.values) == set(HYPERPARAMETERS)
    # Untouched hyperparameters give back the preset exactly.
    for name in HYPERPARAMETERS:
        assert getattr(trial_fields, name) == getattr(fields, name), name
    expected_masks = fields.mask_thresholds
    if isinstance(expected_masks, tuple):
        # RM2/RM3's explicit list fits their head count only: with
        # num_heads searched it is offered as "per_head".
        assert hp.values["mask_thresholds"] == "per_head"
    else:
        assert hp.values["mask_thresholds"] == expected_masks
    for name in set(HYPERPARAMETERS) - {"mask_thresholds"}:
        assert hp.values[name] == getattr(fields, name), name
        default = getattr(fields, name)
        assert all(p.default == default for p in _hp(hp, name)), name


def test_rm1_space_is_the_papers_study():
    hp, _ = _declared(AdRecSearchSpace(get_preset("rm1")))
    (layers,) = _hp(hp, "num_layers")
    assert layers.values == [1, 2, 4]
    (heads,) = _hp(hp, "num_heads")
    # Divisors of D = 16 without H = D (diverges, paper D.6.2).
    assert heads.values == [1, 2, 4, 8]
    (dropout,) = _hp(hp, "dropout")
    assert (dropout.min_value, dropout.max_value) == (0.01, 0.3)
    (activation,) = _hp(hp, "activation")
    assert activation.values == ["relu", "gelu"]
    (norm,) = _hp(hp, "norm_first")
    assert isinstance(norm, kt.engine.hyperparameters.Boolean)
    (masks,) = _hp(hp, "mask_thresholds")
    assert {"geometric", "geometric:5", "none"} <= set(masks.values)
    # Table 4's single thresholds.
    for t in ("0.1", "0.05", "0.01", "0.005", "0.001"):
        assert f"fixed:{t}" in masks.values
    (rate,) = _hp(hp, "learning_rate")
    assert rate.min_value == pytest.approx(0.01)
    assert rate.max_value == pytest.approx(0.3)
    assert rate.sampling == "log"
    (ffn,) = _hp(hp, "ffn_dim")
    assert {128, 512} <= set(ffn.values)


def test_divisors_exclude_the_dimension():
    assert divisors(16) == [1, 2, 4, 8]
    assert divisors(64) == [1, 2, 4, 8, 16, 32]
    assert divisors(1) == []


def test_fixed_and_narrowed():
    space = AdRecSearchSpace(
        get_preset("rm1"),
        fixed={"num_heads": 4, "activation": "gelu", "norm_first": False},
        ranges={
            "dropout": (0.01, 0.1),
            "num_layers": (1, 2),
            "ffn_dim": [64, 256],
            "learning_rate": (0.05, 0.2),
            "mask_thresholds": ["geometric", None, [0.2, 0.1, 0.05, 0.01]],
        },
    )
    hp, fields = _declared(space)
    (heads,) = _hp(hp, "num_heads")
    assert isinstance(heads, kt.engine.hyperparameters.Fixed)
    assert fields.num_heads == 4 and fields.activation == "gelu"
    assert fields.norm_first is False
    (dropout,) = _hp(hp, "dropout")
    assert (dropout.min_value, dropout.max_value) == (0.01, 0.1)
    assert _hp(hp, "num_layers")[0].values == [1, 2]
    assert _hp(hp, "ffn_dim")[0].values == [64, 256]
    # The preset's 128 is not offered: the default moves to the closest.
    assert _hp(hp, "ffn_dim")[0].default == 64
    (rate,) = _hp(hp, "learning_rate")
    assert (rate.min_value, rate.max_value, rate.default) == (0.05, 0.2, 0.1)
    assert _hp(hp, "mask_thresholds")[0].values == [
        "geometric",
        "none",
        "[0.2, 0.1, 0.05, 0.01]",
    ]
    # Every sampled value lies in the narrowed space.
    for seed in range(20):
        values = {}
        for p in hp.space:
            values[p.name] = p.random_sample(seed)
        fields = space.fields_for(values)
        assert fields.num_heads == 4
        assert 0.01 <= fields.dropout <= 0.1
        assert fields.num_layers in (1, 2)
        assert fields.mask_thresholds in (
            "geometric",
            None,
            (0.2, 0.1, 0.05, 0.01),
        )


def test_a_range_of_one_value_is_fixed():
    hp, fields = _declared(
        AdRecSearchSpace(get_preset("rm1"), ranges={"dropout": (0.05, 0.05)})
    )
    assert isinstance(_hp(hp, "dropout")[0], kt.engine.hyperparameters.Fixed)
    assert fields.dropout == 0.05


def test_overrides_move_defaults():
    fields = get_preset("rm1", num_heads=4, dropout=0.1, embedding_dim=32)
    hp, trial = _declared(AdRecSearchSpace(fields))
    assert hp.values["num_heads"] == 4 and hp.values["dropout"] == 0.1
    assert _hp(hp, "num_heads")[0].values == [1, 2, 4, 8, 16]
    assert trial.embedding_dim == 32


@pytest.mark.parametrize(
    "fixed, ranges, message",
    [
        ({"heads": 2}, None, "Unknown hyperparameter"),
        (None, {"dropout_rate": (0.0, 0.1)}, "Unknown hyperparameter"),
        ({"num_heads": 3}, None, "must divide embedding_dim"),
        ({"num_heads": 0}, None, "positive integer"),
        ({"dropout": 1.5}, None, "in \\[0, 1\\)"),
        ({"activation": "tanh"}, None, "activation"),
        ({"norm_first": "yes"}, None, "bool"),
        ({"learning_rate": -1.0}, None, "positive"),
        ({"mask_thresholds": "geometric:1"}, None, "mask_thresholds"),
        ({"mask_thresholds": "fixed:2"}, None, "mask_thresholds"),
        ({"mask_thresholds": "banded"}, None, "mask_thresholds"),
        ({"mask_thresholds": [0.1, 1.0]}, None, "mask_thresholds"),
        ({"dropout": 0.1}, {"dropout": (0.01, 0.2)}, "both fixed"),
        (None, {"dropout": (0.2, 0.1)}, "lo <= hi"),
        (None, {"activation": ("relu", "gelu")}, "list of choices"),
        (None, {"num_layers": (5, 8)}, "leaves none"),
        (None, {"num_heads": []}, "empty"),
        # Two thresholds cannot serve four heads.
        ({"num_heads": 4, "mask_thresholds": [0.1, 0.01]}, None, "fit"),
    ],
)
def test_invalid_settings_raise(fixed, ranges, message):
    with pytest.raises(ValueError, match=message):
        AdRecSearchSpace(get_preset("rm1"), fixed=fixed, ranges=ranges)


@pytest.mark.parametrize(
    "value, spec",
    [
        (None, "none"),
        ("None", "none"),
        ("geometric", "geometric"),
        ("geometric:10", "geometric"),
        ("geometric:5", "geometric:5"),
        ("fixed", "fixed:0.01"),
        ("fixed:0.005", "fixed:0.005"),
        ([0.001, 0.01], "[0.001, 0.01]"),
        ("[0.001, 0.01]", "[0.001, 0.01]"),
    ],
)
def test_mask_schedule_spec(value, spec):
    assert mask_schedule_spec(value) == spec


def test_mask_schedules_resolve_per_head():
    # Hand-computed thresholds for four heads.
    assert resolve_mask_schedule("geometric", 4) == "geometric"
    assert resolve_mask_schedule("geometric:5", 4) == pytest.approx(
        [0.2, 0.04, 0.008, 0.0016]
    )
    assert resolve_mask_schedule("geometric:2", 2) == [0.5, 0.25]
    assert resolve_mask_schedule("fixed:0.05", 3) == [0.05, 0.05, 0.05]
    assert resolve_mask_schedule("none", 2) is None
    assert resolve_mask_schedule("[0.001, 0.01]", 2) == [0.001, 0.01]
    with pytest.raises(ValueError, match="one per head"):
        resolve_mask_schedule("[0.001, 0.01]", 4)


def test_explicit_lists_follow_num_heads():
    # RM3's per-head list fits two heads only. With num_heads searched it
    # is the choice "per_head": the list for 2 heads, the paper's geometric
    # schedule for head counts without a list.
    space = AdRecSearchSpace(get_preset("rm3"))
    hp, fields = _declared(space)
    (masks,) = _hp(hp, "mask_thresholds")
    assert "per_head" in masks.values and masks.default == "per_head"
    assert not any(v.startswith("[") for v in masks.values)
    assert fields.mask_thresholds == (0.001, 0.01)
    for heads, expected in ((2, (0.001, 0.01)), (4, "geometric")):
        hp = kt.HyperParameters()
        hp.values["num_heads"] = heads
        fields = space.declare(hp)
        assert fields.num_heads == heads
        assert fields.mask_thresholds == expected
    # User lists of several lengths: one per head count.
    space = AdRecSearchSpace(
        get_preset("rm1"),
        ranges={
            "num_heads": [2, 4],
            "mask_thresholds": ["none", [0.1, 0.2], [0.1, 0.1, 0.1, 0.1]],
        },
    )
    assert space.describe()["mask_thresholds"]["choices"] == [
        "none",
        "per_head",
    ]
    assert (
        space.fields_for(
            {"num_heads": 4, "mask_thresholds": "per_head"}
        ).mask_thresholds
        == (0.1,) * 4
    )
    # With num_heads fixed, each list is a choice of its own.
    space = AdRecSearchSpace(
        get_preset("rm1"),
        fixed={"num_heads": 2},
        ranges={"mask_thresholds": [[0.1, 0.2], [0.001, 0.01]]},
    )
    assert space.describe()["mask_thresholds"]["choices"] == [
        "[0.1, 0.2]",
        "[0.001, 0.01]",
    ]
    assert space.fields_for(
        {"mask_thresholds": "[0.1, 0.2]"}
    ).mask_thresholds == (0.1, 0.2)


def test_per_head_lists_need_distinct_searched_lengths():
    with pytest.raises(ValueError, match="Two explicit"):
        AdRecSearchSpace(
            get_preset("rm1"),
            ranges={"mask_thresholds": [[0.1, 0.2], [0.3, 0.4]]},
        )
    with pytest.raises(ValueError, match="not among the searched"):
        AdRecSearchSpace(
            get_preset("rm1"),
            ranges={"num_heads": [1, 2], "mask_thresholds": [[0.1] * 4]},
        )


def test_declaring_twice_keeps_the_values():
    space = AdRecSearchSpace(get_preset("rm1"))
    hp = kt.HyperParameters()
    space.declare(hp)
    hp.values.update({"num_heads": 8, "mask_thresholds": "fixed:0.1"})
    fields = space.declare(hp)
    assert fields.num_heads == 8
    assert fields.mask_thresholds == (0.1,) * 8


def test_config_round_trip():
    space = AdRecSearchSpace(
        get_preset("rm1"),
        fixed={"num_heads": 2},
        ranges={"dropout": (0.01, 0.1), "ffn_dim": [64, 128]},
    )
    config = json.loads(json.dumps(space.get_config()))
    clone = AdRecSearchSpace.from_config(config)
    assert clone.describe() == space.describe()
    assert clone.get_config() == config


def test_hypermodel_default_build_is_the_preset_model():
    sizes = [7] * 26
    hypermodel = RankingHyperModel("rm1", vocabulary_sizes=sizes, num_dense=13)
    model = hypermodel.build(kt.HyperParameters())
    # Independent reference: the preset model built without tuning.
    reference = RankingModel.from_preset(
        "rm1", vocabulary_sizes=sizes, num_dense=13
    )
    assert model.interaction.get_config() == reference.interaction.get_config()
    assert (
        model.top_stack.get_config()["units"]
        == reference.top_stack.get_config()["units"]
    )
    optimizer = model.optimizer
    assert optimizer.__class__.__name__.lower() == "sgd"
    assert float(optimizer.learning_rate) == pytest.approx(0.1)


def test_hypermodel_config_round_trip_and_checks():
    hypermodel = RankingHyperModel(
        "rm1",
        vocabulary_sizes=[5, 6],
        num_dense=3,
        overrides={"bottom_units": [4]},
        fixed={"num_heads": 2},
        ranges={"dropout": (0.01, 0.1)},
    )
    config = json.loads(json.dumps(hypermodel.get_config()))
    clone = RankingHyperModel.from_config(config)
    assert clone.get_config() == config
    assert clone.search_space.describe() == hypermodel.search_space.describe()
    with pytest.raises(ValueError, match="vocabulary_sizes"):
        RankingHyperModel("rm1", vocabulary_sizes=[], num_dense=3)
    with pytest.raises(ValueError, match="num_dense"):
        RankingHyperModel("rm1", vocabulary_sizes=[3], num_dense=0)
    with pytest.raises(ValueError, match="patience"):
        RankingHyperModel("rm1", vocabulary_sizes=[3], num_dense=1, patience=0)
    with pytest.raises(ValueError, match="Unknown preset field"):
        RankingHyperModel(
            "rm1", vocabulary_sizes=[3], num_dense=1, overrides={"x": 1}
        )


def test_mask_rules_and_schedules_are_searched():
    hp, fields = _declared(AdRecSearchSpace(get_preset("rm1")))
    (rule,) = _hp(hp, "mask_rule")
    assert rule.values == ["paper", "straight_through", "relative"]
    (warmup,) = _hp(hp, "mask_warmup_steps")
    assert warmup.values == [0, 32, 256]
    (floor,) = _hp(hp, "min_keys")
    assert floor.values == [1, 2, 4]
    space = AdRecSearchSpace(
        get_preset("rm1"),
        fixed={"mask_rule": "relative", "mask_warmup_steps": 100},
    )
    trial = space.fields_for({})
    assert trial.mask_rule == "relative"
    assert trial.mask_warmup_steps == 100
    with pytest.raises(ValueError, match="mask_rule"):
        AdRecSearchSpace(get_preset("rm1"), fixed={"mask_rule": "soft"})
    with pytest.raises(ValueError, match="mask_warmup_steps"):
        AdRecSearchSpace(get_preset("rm1"), fixed={"mask_warmup_steps": -1})
