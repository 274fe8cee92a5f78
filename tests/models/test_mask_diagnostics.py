"""Mask rules through presets, model-level diagnostics and export."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.layers import MaskedMultiHeadAttention
from keras_adrec.models import RankingModel
from keras_adrec.models import format_mask_diagnostics
from keras_adrec.models import get_preset
from keras_adrec.models import mask_diagnostics
from tests.test_case import assert_allclose

VOCABULARIES = [7, 5, 9]


def small_fields(**overrides):
    fields = get_preset(
        "rm1", bottom_units=[8], top_units=[8], embedding_dim=8, **overrides
    )
    return fields


def batch(rows=32, seed=0):
    rng = np.random.default_rng(seed)
    features = {
        "dense": rng.normal(size=(rows, 4)).astype("float32"),
        "sparse": np.stack(
            [rng.integers(0, v, rows) for v in VOCABULARIES], axis=1
        ).astype("int32"),
    }
    return features, rng.integers(0, 2, rows).astype("float32")


@pytest.mark.parametrize("rule", ["paper", "straight_through", "relative"])
def test_preset_fields_reach_the_attention_layer(rule):
    fields = small_fields(mask_rule=rule, min_keys=3, mask_warmup_steps=5)
    model = RankingModel.from_preset(fields, VOCABULARIES, num_dense=4)
    model(batch()[0])  # build
    attention = model.interaction.blocks[0].attention_layer
    assert attention.mask_rule == rule
    assert attention.min_keys == 3
    assert attention.mask_warmup_steps == 5


def test_unknown_preset_rule_raises():
    with pytest.raises(ValueError, match="mask_rule"):
        RankingModel.from_preset(
            small_fields(mask_rule="argmax"), VOCABULARIES, num_dense=4
        )


def test_model_mask_diagnostics():
    keras.utils.set_random_seed(0)
    fields = small_fields(
        mask_rule="paper", mask_thresholds=[0.5, 0.0], mask_warmup_steps=0
    )
    model = RankingModel.from_preset(fields, VOCABULARIES, num_dense=4)
    features, labels = batch()
    model(features)
    report = mask_diagnostics(model, features, labels)
    assert len(report) == 1
    entry = report[0]
    assert entry["num_keys"] == 4
    assert entry["mask_rule"] == "paper"
    assert_allclose(entry["mean_kept_keys"], [1.0, 4.0])
    assert_allclose(entry["single_key_fraction"], [1.0, 0.0])
    # Head 0 keeps one key per row: no query/key gradient (float rounding).
    assert entry["query_kernel_grad_norm"][0] < 1e-8
    assert entry["key_kernel_grad_norm"][0] < 1e-8
    assert entry["query_kernel_grad_norm"][1] > 1e-6
    lines = format_mask_diagnostics(report, "title")
    assert any("100.0%" in line for line in lines)
    without_labels = mask_diagnostics(model, features)
    assert "query_kernel_grad_norm" not in without_labels[0]


def test_model_mask_diagnostics_needs_adrec():
    fields = small_fields(interaction="dot")
    model = RankingModel.from_preset(fields, VOCABULARIES, num_dense=4)
    features, _ = batch()
    model(features)
    with pytest.raises(ValueError, match="AdRecInteraction"):
        mask_diagnostics(model, features)


@pytest.mark.parametrize("rule", ["relative", "straight_through"])
def test_saved_model_export_applies_the_rule(tmp_path, rule):
    keras.utils.set_random_seed(1)
    layer = MaskedMultiHeadAttention(
        2,
        4,
        mask_thresholds=[0.3, 0.05],
        mask_rule=rule,
        mask_warmup_steps=4,
        kernel_initializer=keras.initializers.RandomNormal(0, 0.8),
    )
    inputs = keras.Input((6, 8))
    model = keras.Model(inputs, layer(inputs, inputs))
    layer.mask_step.assign(2.0)
    x = np.random.default_rng(2).normal(size=(3, 6, 8)).astype("float32")
    dense = MaskedMultiHeadAttention(2, 4, mask_thresholds=None)
    dense.build((None, 6, 8), (None, 6, 8))
    dense.set_weights([w for w in layer.get_weights() if w.ndim > 0])
    # The rule changes the output here, so equal outputs mean equal rules.
    gap = np.asarray(dense(x, x)) - model.predict(x, verbose=0)
    assert np.abs(gap).max() > 1e-3
    path = os.path.join(str(tmp_path), "exported")
    model.export(path)
    loaded = tf.saved_model.load(path)  # kept alive while it serves
    served = loaded.serve(tf.constant(x))
    assert_allclose(served, model.predict(x, verbose=0), atol=1e-5)
