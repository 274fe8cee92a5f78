"""Tests of the TF Serving export (`keras_adrec.export`).

The reference for every prediction is the Keras model itself:
`model.predict(preprocessor(raw))` on the trained model directory, in this
process. The SavedModel is read back with plain `tf.saved_model.load`, once
in a fresh interpreter where `import keras_adrec` is blocked, and listed
with TensorFlow's own `saved_model_cli`.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.cli import main
from keras_adrec.data.synthetic import SyntheticCriteo
from keras_adrec.export import EXAMPLES_SIGNATURE
from keras_adrec.export import SERVING_SIGNATURE
from keras_adrec.export import export_for_serving
from keras_adrec.export import next_version
from keras_adrec.jobs.train_ranking import TrainRankingSettings
from keras_adrec.jobs.train_ranking import train_ranking
from keras_adrec.models import RankingModel
from keras_adrec.models import get_preset
from keras_adrec.training import ModelDirectory
from tests import samples

TRAIN_LINES = 2000
EVAL_ROWS = 1024
TINY = {"bottom_units": [32], "top_units": [32]}


def _split_lines(source, directory):
    """Write the first TRAIN_LINES lines and the next EVAL_ROWS lines."""
    with open(source, encoding="utf-8") as f:
        lines = [next(f) for _ in range(TRAIN_LINES + EVAL_ROWS)]
    train = directory / "train.txt"
    held_out = directory / "eval.txt"
    train.write_text("".join(lines[:TRAIN_LINES]), encoding="utf-8")
    held_out.write_text("".join(lines[TRAIN_LINES:]), encoding="utf-8")
    return train, held_out


@pytest.fixture(scope="module")
def criteo(tmp_path_factory):
    """A tiny trained Criteo model, its export and 1024 held-out raw rows."""
    root = tmp_path_factory.mktemp("criteo_export")
    source = samples.shared_data_file("criteo/train_head10k.txt")
    if source is None:
        generator = SyntheticCriteo(
            rows_per_day=TRAIN_LINES + EVAL_ROWS, num_days=1, seed=0
        )
        source = generator.write_tsv(str(root / "synthetic"))[0]
    train, held_out = _split_lines(source, root)
    model_dir = root / "model"
    train_ranking(
        TrainRankingSettings(
            data=f"criteo:{train}",
            output=str(model_dir),
            preset=get_preset("rm1", interaction="adrec", **TINY),
            verbose=False,
        )
    )
    raw, _ = next(iter(adrec_data.criteo_dataset(str(held_out), EVAL_ROWS)))
    raw = {
        "dense": raw["dense"].numpy(),
        "categorical": raw["categorical"].numpy().astype("S"),
    }
    export_dir = root / "serving"
    path = export_for_serving(model_dir, export_dir)
    model, preprocessor, _ = ModelDirectory(model_dir).load_ranking()
    return {
        "model_dir": model_dir,
        "export_dir": export_dir,
        "path": path,
        "raw": raw,
        "model": model,
        "preprocessor": preprocessor,
    }


@pytest.fixture(scope="module")
def loaded(criteo):
    return tf.saved_model.load(str(criteo["path"]))


def _keras_probability(criteo, raw):
    inputs = criteo["preprocessor"](raw)
    return criteo["model"].predict(inputs, batch_size=EVAL_ROWS, verbose=0)


def test_export_writes_version_one_atomically(criteo):
    path, export_dir = criteo["path"], criteo["export_dir"]
    assert path == export_dir / "1"
    assert (path / "saved_model.pb").is_file()
    assert (path / "variables" / "variables.index").is_file()
    # The staging folder was renamed into place: nothing else is left.
    assert sorted(os.listdir(export_dir)) == ["1"]
    # Readable by a model server running as another user (not mkdtemp's
    # 0700): the mode the process umask gives new folders.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o777 & ~umask
    metadata = json.loads(
        (path / "assets.extra" / "adrec_serving.json").read_text()
    )
    assert metadata["data_kind"] == "criteo"
    assert metadata["schema"]["categorical_names"][0] == "C1"
    assert set(metadata["signatures"]) == {
        SERVING_SIGNATURE,
        EXAMPLES_SIGNATURE,
    }


def test_existing_version_is_not_overwritten(criteo):
    with pytest.raises(FileExistsError, match="already exists"):
        export_for_serving(criteo["model_dir"], criteo["export_dir"], 1)
    with pytest.raises(ValueError, match="positive int"):
        export_for_serving(criteo["model_dir"], criteo["export_dir"], 0)


def test_next_version(tmp_path):
    assert next_version(tmp_path / "absent") == 1
    for name in ("1", "3", "12", ".13.tmp-1-ab", "latest"):
        (tmp_path / name).mkdir()
    (tmp_path / "40").write_text("a file, not a version")
    assert next_version(tmp_path) == 13


ISOLATED_SCRIPT = """
import importlib.abc
import json
import sys


class BlockKerasAdrec(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "keras_adrec" or name.startswith("keras_adrec."):
            raise ImportError(f"{name} is blocked in this process")
        return None


sys.meta_path.insert(0, BlockKerasAdrec())
try:
    import keras_adrec  # noqa: F401
    blocked = False
except ImportError:
    blocked = True

import numpy as np
import tensorflow as tf

export_path, rows_path, out_path = sys.argv[1:4]
rows = np.load(rows_path)
dense, categorical = rows["dense"], rows["categorical"]
loaded = tf.saved_model.load(export_path)
serve = loaded.signatures["serving_default"]
outputs = {}
for n in (1, 1024):
    outputs[f"raw_{n}"] = serve(
        dense=tf.constant(dense[:n]), categorical=tf.constant(categorical[:n])
    )["probability"].numpy()
outputs["raw_nan_as_zero"] = serve(
    dense=tf.constant(np.nan_to_num(dense, nan=0.0)),
    categorical=tf.constant(categorical),
)["probability"].numpy()
# tf.Example rows; missing values are left out of the proto.
names = json.loads(rows["names"].item())
serialized = []
for d_row, c_row in zip(dense, categorical):
    feature = {}
    for name, value in zip(names["dense"], d_row):
        if not np.isnan(value):
            feature[name] = tf.train.Feature(
                float_list=tf.train.FloatList(value=[value])
            )
    for name, value in zip(names["categorical"], c_row):
        if value:
            feature[name] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[value])
            )
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    serialized.append(example.SerializeToString())
outputs["examples"] = loaded.signatures["serve_examples"](
    examples=tf.constant(serialized)
)["probability"].numpy()
np.savez(out_path, **outputs)
print(json.dumps({
    "blocked": blocked,
    "keras_adrec_modules": sorted(
        m for m in sys.modules if m.startswith("keras_adrec")
    ),
    "signatures": sorted(loaded.signatures),
}))
"""


@pytest.mark.slow
def test_fresh_process_without_keras_adrec_matches_keras(criteo, tmp_path):
    raw = criteo["raw"]
    schema = criteo["preprocessor"].schema
    rows_path = tmp_path / "rows.npz"
    np.savez(
        rows_path,
        dense=raw["dense"],
        categorical=raw["categorical"],
        names=np.array(
            json.dumps(
                {
                    "dense": schema.dense_names,
                    "categorical": schema.categorical_names,
                }
            )
        ),
    )
    assert np.isnan(raw["dense"]).any() and (raw["categorical"] == b"").any()
    script = tmp_path / "isolated.py"
    script.write_text(textwrap.dedent(ISOLATED_SCRIPT))
    out_path = tmp_path / "outputs.npz"
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            str(script),
            str(criteo["path"]),
            str(rows_path),
            str(out_path),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["blocked"] is True
    assert report["keras_adrec_modules"] == []
    assert {SERVING_SIGNATURE, EXAMPLES_SIGNATURE} <= set(report["signatures"])

    outputs = np.load(out_path)
    expected = _keras_probability(criteo, raw)
    expected_one = _keras_probability(
        criteo, {k: v[:1] for k, v in raw.items()}
    )
    assert expected.shape == (EVAL_ROWS, 1)
    assert outputs["raw_1"].shape == (1, 1)
    np.testing.assert_allclose(outputs["raw_1"], expected_one, atol=1e-6)
    np.testing.assert_allclose(outputs["raw_1024"], expected, atol=1e-6)
    np.testing.assert_allclose(outputs["examples"], expected, atol=1e-6)
    # A missing dense value sent as 0 (JSON) equals NaN.
    np.testing.assert_allclose(outputs["raw_nan_as_zero"], expected, atol=1e-6)
    # Not a constant model: the comparison can fail.
    assert np.ptp(expected) > 1e-3


@pytest.mark.slow
def test_saved_model_cli_lists_both_signatures(criteo):
    command = shutil.which("saved_model_cli")
    command = (
        [command]
        if command
        else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    )
    result = subprocess.run(
        command + ["show", "--all", "--dir", str(criteo["path"])],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    text = result.stdout

    def section(name):
        start = text.index(f"signature_def['{name}']")
        end = text.index("Method name is:", start)
        return text[start:end]

    raw = section(SERVING_SIGNATURE)
    assert "inputs['dense']" in raw and "shape: (-1, 13)" in raw
    assert "inputs['categorical']" in raw and "shape: (-1, 26)" in raw
    assert "DT_STRING" in raw and "DT_FLOAT" in raw
    assert "outputs['probability']" in raw and "shape: (-1, 1)" in raw
    examples = section(EXAMPLES_SIGNATURE)
    assert "inputs['examples']" in examples and "shape: (-1)" in examples
    assert "outputs['probability']" in examples


def test_unknown_categories_go_to_oov(criteo, loaded):
    raw = criteo["raw"]
    dense = raw["dense"][:8]
    unseen = np.array(
        [[f"never-seen-{r}-{c}" for c in range(26)] for r in range(8)]
    )
    for vocabulary in criteo["preprocessor"].vocabularies:
        assert not set(vocabulary) & set(unseen.ravel())
    actual = loaded.signatures[SERVING_SIGNATURE](
        dense=tf.constant(dense), categorical=tf.constant(unseen)
    )["probability"]
    # Reference: the Keras model fed id 0 (the OOV bucket) everywhere.
    expected = criteo["model"].predict(
        {
            "dense": np.log1p(np.maximum(np.nan_to_num(dense), 0.0)),
            "sparse": np.zeros((8, 26), "int32"),
        },
        verbose=0,
    )
    np.testing.assert_allclose(actual.numpy(), expected, atol=1e-6)


def _call_raw(loaded, dense, categorical):
    return loaded.signatures[SERVING_SIGNATURE](
        dense=dense, categorical=categorical
    )["probability"]


@pytest.mark.parametrize(
    "dense, categorical, message",
    [
        (tf.zeros([2, 12]), tf.fill([2, 26], "a"), "not compatible"),
        (tf.zeros([13]), tf.fill([2, 26], "a"), "not compatible"),
        (tf.zeros([2, 13]), tf.fill([2, 25], "a"), "not compatible"),
        (tf.zeros([2, 13], tf.int64), tf.fill([2, 26], "a"), "float"),
        (tf.zeros([2, 13]), tf.zeros([2, 26], tf.int32), "string"),
        (tf.zeros([3, 13]), tf.fill([2, 26], "a"), "same batch size"),
    ],
    ids=["narrow", "rank1", "narrow-cat", "int64", "int-cat", "batches"],
)
def test_wrong_inputs_raise_cleanly(loaded, dense, categorical, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _call_raw(loaded, dense, categorical)
    # The `tf.function` form rejects it too.
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        loaded.serving_default(dense, categorical)
    # The process is intact: a valid call still answers.
    ok = _call_raw(loaded, tf.zeros([2, 13]), tf.fill([2, 26], ""))
    assert ok.shape == (2, 1)


def test_malformed_examples_raise_cleanly(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures[EXAMPLES_SIGNATURE](
            examples=tf.constant([b"not a proto"])
        )
    wrong_type = tf.train.Example(
        features=tf.train.Features(
            feature={"I1": tf.train.Feature(int64_list=tf.train.Int64List())}
        )
    )
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures[EXAMPLES_SIGNATURE](
            examples=tf.constant([wrong_type.SerializeToString()])
        )


def _avazu_model_dir(directory):
    """A hashing-mode Avazu model directory, as `adrec train` lays it out."""
    schema = adrec_data.AVAZU_SCHEMA
    preprocessor = adrec_data.FeaturePreprocessor(schema, max_index_range=97)
    model = RankingModel.from_preset(
        "rm3",
        vocabulary_sizes=preprocessor.vocabulary_sizes,
        num_dense=schema.num_dense,
        interaction="adrec",
        bottom_units=[16],
        top_units=[16],
    )
    model.build({"dense": (None, schema.num_dense), "sparse": (None, 21)})
    directory.mkdir()
    model.save(directory / "model.keras")
    preprocessor.save_artifacts(directory / "preprocessing")
    (directory / "config.json").write_text(
        json.dumps({"data": {"kind": "avazu"}, "preset": {"name": "rm3"}})
    )
    return model, preprocessor


def _avazu_raw(rows):
    source = samples.shared_data_file("avazu/train_head9999.csv")
    if source is not None:
        raw, _ = next(iter(adrec_data.avazu_dataset(str(source), rows)))
        return {
            "dense": raw["dense"].numpy(),
            "categorical": raw["categorical"].numpy().astype("S"),
        }
    rng = np.random.default_rng(0)
    return {
        "dense": rng.integers(0, 24, (rows, 1)).astype("float32"),
        "categorical": rng.integers(0, 500, (rows, 21)).astype("S"),
    }


def test_cli_exports_avazu(tmp_path, capsys):
    model_dir = tmp_path / "avazu_model"
    model, preprocessor = _avazu_model_dir(model_dir)
    export_dir = tmp_path / "serving"
    argv = ["export", "--model", str(model_dir), "--output", str(export_dir)]

    assert main(argv + ["--version", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"path": str(export_dir / "3"), "version": 3}
    assert next_version(export_dir) == 4
    for bad, message in (
        (["--version", "3"], "already exists"),
        (["--version", "0"], "positive"),
    ):
        assert main(argv + bad) == 2
        assert message in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path), "--output", "x"]) == 2
    assert "holds no model.keras" in capsys.readouterr().err

    loaded = tf.saved_model.load(str(export_dir / "3"))
    serve = loaded.signatures[SERVING_SIGNATURE]
    specs = serve.structured_input_signature[1]
    assert specs["dense"].shape.as_list() == [None, 1]
    assert specs["categorical"].shape.as_list() == [None, 21]
    raw = _avazu_raw(64)
    expected = model.predict(preprocessor(raw), verbose=0)
    actual = serve(
        dense=tf.constant(raw["dense"]),
        categorical=tf.constant(raw["categorical"]),
    )["probability"]
    np.testing.assert_allclose(actual.numpy(), expected, atol=1e-6)
    # tf.Example features are named as in the Avazu schema.
    examples = []
    for d_row, c_row in zip(raw["dense"], raw["categorical"]):
        feature = {
            "hour_of_day": tf.train.Feature(
                float_list=tf.train.FloatList(value=d_row)
            )
        }
        for name, value in zip(
            adrec_data.AVAZU_SCHEMA.categorical_names, c_row
        ):
            feature[name] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[value])
            )
        examples.append(
            tf.train.Example(
                features=tf.train.Features(feature=feature)
            ).SerializeToString()
        )
    from_examples = loaded.signatures[EXAMPLES_SIGNATURE](
        examples=tf.constant(examples)
    )["probability"]
    np.testing.assert_allclose(from_examples.numpy(), expected, atol=1e-6)
    assert keras.ops.convert_to_numpy(expected).std() > 0
