"""FeaturePreprocessor: vocabularies, OOV, hashing, dense transform,
artifacts, saving inside a model, and fitting on the training split only."""

import collections
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.data import CRITEO_SCHEMA
from keras_adrec.data import DatasetSchema
from keras_adrec.data import FeaturePreprocessor
from keras_adrec.data import criteo_dataset
from keras_adrec.data import preprocess
from tests.samples import shared_data_file
from tests.test_case import assert_allclose
from tests.test_case import assert_config_round_trip
from tests.test_case import assert_keras_save_load

TOY = DatasetSchema("toy", ["a", "b"], ["c1", "c2"])
NAN = float("nan")


def raw(dense, categorical):
    return {
        "dense": tf.constant(dense, tf.float32),
        "categorical": tf.constant(categorical, tf.string),
    }


def toy_dataset():
    """Two batches; counts c1: a 3, b 2, c 1, d 1, '' 1; c2: x 3, y 3, '' 2."""
    first = raw(
        [[1.0, 2.0]] * 4,
        [["a", "x"], ["b", "y"], ["a", "y"], ["c", ""]],
    )
    second = raw(
        [[1.0, 2.0]] * 4,
        [["a", "x"], ["b", "y"], ["", "x"], ["d", ""]],
    )
    batches = [(first, tf.zeros([4, 1])), (second, tf.ones([4, 1]))]
    return tf.data.Dataset.from_tensor_slices([0, 1]).map(
        lambda i: tf.nest.map_structure(
            lambda a, b: tf.where(i == 0, a, b), *batches
        )
    )


def test_vocabularies_follow_min_frequency_and_count_order():
    layer = FeaturePreprocessor.fit(toy_dataset(), TOY, min_frequency=2)
    # Hand-computed: descending count, ties by token; rare tokens dropped.
    assert layer.vocabularies == [["a", "b"], ["x", "y", ""]]
    # The fit read 2 batches of 4 rows: the epoch length `adrec train`
    # uses to choose graph or XLA for a stream.
    assert layer.fitted_rows == 8
    assert layer.vocabulary_sizes == [3, 4]
    tokens = [["a", "x"], ["b", "y"], ["c", ""], ["", "zzz"], ["new", "x"]]
    out = layer(raw([[0.0, 0.0]] * 5, tokens))
    np.testing.assert_array_equal(
        out["sparse"], [[1, 1], [2, 2], [0, 3], [0, 0], [0, 1]]
    )
    assert out["sparse"].dtype == tf.int32

    layer = FeaturePreprocessor.fit(toy_dataset(), TOY)  # min_frequency=1
    assert layer.vocabularies == [["a", "b", "", "c", "d"], ["x", "y", ""]]
    assert layer.vocabulary_sizes == [6, 4]


def test_dense_transform_matches_numpy():
    values = np.array(
        [[1.0, NAN], [-2.0, 0.0], [1e6, 3.5], [NAN, -0.5]], np.float32
    )
    layer = FeaturePreprocessor(TOY, max_index_range=10)
    out = layer(raw(values, [["a", "b"]] * 4))
    expected = np.log1p(np.maximum(np.nan_to_num(values, nan=0.0), 0.0))
    assert_allclose(out["dense"], expected)
    assert out["dense"].dtype == tf.float32


def test_dense_stays_float32_under_mixed_precision():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = FeaturePreprocessor(TOY, max_index_range=10)
        out = layer(raw([[1e6, 70000.0]], [["a", "b"]]))
    finally:
        keras.config.set_dtype_policy(policy)
    assert out["dense"].dtype == tf.float32
    assert_allclose(out["dense"], np.log1p([[1e6, 70000.0]]), rtol=1e-6)


def test_hashing_mode_needs_no_data_and_bounds_ids():
    layer = FeaturePreprocessor.fit(None, TOY, max_index_range=1000)
    assert layer.vocabulary_sizes == [1000, 1000]
    assert layer.fitted_rows is None  # nothing was read
    tokens = [[f"{i:08x}", f"{i * 7:08x}"] for i in range(200)]
    ids = layer(raw([[0.0, 0.0]] * 200, tokens))["sparse"].numpy()
    assert ids.min() >= 0 and ids.max() < 1000
    again = layer(raw([[0.0, 0.0]] * 200, tokens[::-1]))["sparse"].numpy()
    np.testing.assert_array_equal(ids, again[::-1])  # a function of token
    # 200 distinct tokens in 1000 buckets: about 18 collide by chance.
    assert len(set(ids[:, 0])) > 150
    # The documented definition: to_hash_bucket_fast(token, M).
    np.testing.assert_array_equal(
        ids, tf.strings.to_hash_bucket_fast(tokens, 1000).numpy()
    )


def test_artifacts_round_trip(tmp_path):
    layer = FeaturePreprocessor.fit(toy_dataset(), TOY, min_frequency=1)
    json_path = layer.save_artifacts(tmp_path / "prep")
    names = sorted(os.listdir(tmp_path / "prep"))
    assert names == [
        "feature_preprocessor.json",
        "vocabulary_00_c1.txt",
        "vocabulary_01_c2.txt",
    ]
    # Line k of a vocabulary file is the token of id k; "" is a blank line.
    with open(tmp_path / "prep" / "vocabulary_01_c2.txt") as f:
        assert f.read() == "x\ny\n\n"
    with open(json_path) as f:
        saved = json.load(f)
    assert saved["config"]["vocabulary_sizes"] == [6, 4]
    assert saved["config"]["vocabularies"] is None

    loaded = FeaturePreprocessor.load_artifacts(tmp_path / "prep")
    assert loaded.vocabularies == layer.vocabularies
    batch = raw(
        [[3.0, NAN]] * 4, [["a", ""], ["d", "y"], ["", "x"], ["zz", "q"]]
    )
    for key in ("dense", "sparse"):
        np.testing.assert_array_equal(layer(batch)[key], loaded(batch)[key])

    hashing = FeaturePreprocessor(TOY, max_index_range=64)
    hashing.save_artifacts(tmp_path / "hash")
    assert os.listdir(tmp_path / "hash") == ["feature_preprocessor.json"]
    reloaded = FeaturePreprocessor.load_artifacts(tmp_path / "hash")
    np.testing.assert_array_equal(
        hashing(batch)["sparse"], reloaded(batch)["sparse"]
    )
    with pytest.raises(FileNotFoundError, match="feature_preprocessor.json"):
        FeaturePreprocessor.load_artifacts(tmp_path)


def test_config_round_trips():
    explicit = FeaturePreprocessor(TOY, vocabularies=[["a"], ["x", ""]])
    clone = assert_config_round_trip(explicit)
    batch = raw([[1.0, 2.0]] * 2, [["a", ""], ["b", "x"]])
    np.testing.assert_array_equal(
        explicit(batch)["sparse"], clone(batch)["sparse"]
    )
    assert_config_round_trip(FeaturePreprocessor(TOY, max_index_range=7))
    fitted = FeaturePreprocessor.fit(toy_dataset(), TOY, min_frequency=2)
    config = fitted.get_config()
    # Fitted vocabularies travel as files (artifacts or .keras assets).
    assert config["vocabularies"] is None
    assert config["vocabulary_sizes"] == [3, 4]
    clone = assert_config_round_trip(fitted)
    assert clone.vocabulary_sizes == [3, 4]
    with pytest.raises(ValueError, match="vocabularies were not loaded"):
        clone(batch)


def test_inside_a_model_keras_file_and_saved_model(tmp_path):
    layer = FeaturePreprocessor.fit(toy_dataset(), TOY, min_frequency=1)
    inputs = {
        "dense": keras.Input((2,), name="dense"),
        "categorical": keras.Input((2,), dtype="string", name="categorical"),
    }
    features = layer(inputs)
    ids = keras.ops.cast(features["sparse"], "float32")
    both = keras.ops.concatenate([features["dense"], ids], axis=1)
    outputs = keras.layers.Dense(1, name="head")(both)
    model = keras.Model(inputs, outputs)
    batch = raw(
        [[3.0, NAN], [0.0, 1.0], [-1.0, 7.0]],
        [["a", ""], ["d", "y"], ["zz", "x"]],
    )
    assert_keras_save_load(model, batch, tmp_path)

    model.export(str(tmp_path / "serving"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "serving"))
    assert_allclose(served.serve(batch), model(batch))


def test_preprocess_maps_a_reader_dataset(tmp_path):
    lines = [
        "1\t5\t\t-3" + "\t1" * 10 + "\tdeadbeef" + "\t" * 25,
        "0" + "\t" * 13 + "\t0000abcd" * 26,
    ]
    path = tmp_path / "a.txt"
    path.write_text("\n".join(lines) + "\n")
    raw_ds = criteo_dataset(str(path), 2)
    layer = FeaturePreprocessor.fit(raw_ds, CRITEO_SCHEMA)
    [(features, label)] = list(preprocess(raw_ds, layer))
    assert features["dense"].shape == (2, 13)
    assert features["sparse"].shape == (2, 26)
    assert features["sparse"].dtype == tf.int32
    assert_allclose(features["dense"][0, :3], np.log1p([5.0, 0.0, 0.0]))
    np.testing.assert_array_equal(label, [[1.0], [0.0]])
    # C1: both tokens seen once; ties ordered by token.
    assert layer.vocabularies[0] == ["0000abcd", "deadbeef"]
    np.testing.assert_array_equal(features["sparse"][:, 0], [2, 1])


def test_fitted_on_training_split_only(tmp_path):
    # 10 rows; C1 of the last 2 (the validation split) is only there.
    lines = [
        "\t".join(["0"] + ["1"] * 13 + [f"{i % 3:08x}"] + ["0000000a"] * 25)
        for i in range(8)
    ]
    lines += [
        "\t".join(["1"] + ["2"] * 13 + ["deadbeef"] + ["0000000a"] * 25)
    ] * 2
    path = tmp_path / "days.txt"
    path.write_text("\n".join(lines) + "\n")
    train = criteo_dataset(str(path), 4, split="train", val_fraction=0.2)
    layer = FeaturePreprocessor.fit(train, CRITEO_SCHEMA)
    assert "deadbeef" not in layer.vocabularies[0]
    assert layer.vocabularies[0] == ["00000000", "00000001", "00000002"]
    val = criteo_dataset(str(path), 4, split="val", val_fraction=0.2)
    [(features, _)] = list(preprocess(val, layer))
    np.testing.assert_array_equal(features["sparse"][:, 0], [0, 0])
    np.testing.assert_array_equal(features["sparse"][:, 1], [1, 1])


def test_real_sample_vocabularies_match_python_counts():
    path = shared_data_file("criteo/train_head10k.txt")
    if path is None:
        pytest.skip("real data sample criteo/train_head10k.txt is absent")
    with open(path) as f:
        rows = [line.split("\t")[14:] for line in f.read().splitlines()]
    train = criteo_dataset(str(path), 1024, split="train", val_fraction=0.2)
    layer = FeaturePreprocessor.fit(train, CRITEO_SCHEMA, min_frequency=2)
    for column in range(26):
        counts = collections.Counter(row[column] for row in rows[:8000])
        kept = [t for t, c in counts.items() if c >= 2]
        expected = sorted(kept, key=lambda t: (-counts[t], t))
        assert layer.vocabularies[column] == expected
    # A token seen only in the validation rows maps to OOV (id 0).
    train_tokens = [{r[c] for r in rows[:8000]} for c in range(26)]
    val_only = [
        (i, column)
        for i in range(8000, 10000)
        for column in range(26)
        if rows[i][column] not in train_tokens[column]
    ]
    assert val_only
    val = criteo_dataset(str(path), 2000, split="val", val_fraction=0.2)
    [(features, _)] = list(preprocess(val, layer))
    sparse = features["sparse"].numpy()
    for i, column in val_only:
        assert sparse[i - 8000, column] == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_index_range": 0}, "`max_index_range` must be a positive int"),
        ({"min_frequency": 0}, "`min_frequency` must be a positive int"),
        (
            {"max_index_range": 5, "vocabularies": [["a"], ["b"]]},
            "either `vocabularies` or `max_index_range`",
        ),
        ({"vocabularies": [["a"]]}, "one list per categorical column"),
        ({"vocabularies": [["a", "a"], []]}, "duplicate tokens"),
        (
            {"vocabularies": [["a"], []], "vocabulary_sizes": [3, 1]},
            "do not match the recorded",
        ),
        ({"schema": "criteo"}, "`schema` must be a DatasetSchema"),
    ],
)
def test_invalid_arguments(kwargs, message):
    args = {"schema": TOY, **kwargs}
    with pytest.raises(ValueError, match=message):
        FeaturePreprocessor(**args)


def test_unfitted_and_wrong_inputs_raise():
    with pytest.raises(ValueError, match="no vocabularies yet"):
        FeaturePreprocessor(TOY).vocabulary_sizes
    layer = FeaturePreprocessor(TOY, max_index_range=5)
    with pytest.raises(ValueError, match="must have 2 columns"):
        layer(raw([[1.0, 2.0, 3.0]], [["a", "b"]]))
    infinite = toy_dataset().repeat()
    with pytest.raises(ValueError, match="infinite dataset"):
        FeaturePreprocessor.fit(infinite, TOY)
