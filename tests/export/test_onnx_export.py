"""ONNX export (`adrec export --format onnx`): ONNX Runtime on real rows
gives the SavedModel's predictions."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.cli import main
from keras_adrec.data import TaobaoVocabulary
from keras_adrec.export import OnnxInputMapper
from keras_adrec.export import export_for_serving
from keras_adrec.export import export_onnx
from keras_adrec.export import export_sequential_for_serving
from keras_adrec.export import warmup

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

ROWS = 1024


def _session(version_dir):
    return ort.InferenceSession(
        str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )


def test_ranking_onnx_matches_the_saved_model(
    ranking_model_dir, ranking_saved_model, criteo_file, tmp_path, capsys
):
    argv = ["export", "--model", str(ranking_model_dir), "--format", "onnx"]
    assert main(argv + ["--output", str(tmp_path / "onnx")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    path = tmp_path / "onnx" / "1"
    assert printed == {"path": str(path), "version": 1}
    session = _session(path)
    assert [i.name for i in session.get_inputs()] == ["dense", "sparse"]
    assert [o.name for o in session.get_outputs()] == ["probability"]

    # Rows after the ones the vocabularies were fitted on: unseen tokens
    # (out-of-vocabulary ids) are part of the comparison.
    batches = iter(adrec_data.criteo_dataset(criteo_file, ROWS))
    next(batches)
    raw, _ = next(batches)
    raw = {k: v.numpy() for k, v in raw.items()}
    inputs = OnnxInputMapper(path)(raw)
    assert (inputs["sparse"] == 0).any() and np.isnan(raw["dense"]).any()
    actual = session.run(None, inputs)[0]

    serve = tf.saved_model.load(str(ranking_saved_model))
    expected = serve.signatures["serving_default"](
        dense=tf.constant(raw["dense"]),
        categorical=tf.constant(raw["categorical"]),
    )["probability"]
    assert actual.shape == (ROWS, 1)
    assert np.abs(actual - expected.numpy()).max() <= 1e-5
    assert np.ptp(actual) > 1e-3  # a constant model would compare weakly
    one = session.run(None, {k: v[:1] for k, v in inputs.items()})[0]
    np.testing.assert_allclose(one, actual[:1], atol=1e-6)


def test_sequential_onnx_matches_the_saved_model(
    sequential_model_dir, tmp_path
):
    path = export_onnx(sequential_model_dir, tmp_path / "onnx")
    config = json.loads((sequential_model_dir / "config.json").read_text())
    vocabulary = TaobaoVocabulary.load_artifacts(
        sequential_model_dir / "preprocessing"
    )
    # Real histories of the training events (the warm-up rows).
    raw, source = warmup.sequential_warmup_rows(config, vocabulary, 21, False)
    assert source.startswith("training data")
    session = _session(path)
    actual = session.run(None, OnnxInputMapper(path)(raw))[0]

    saved = export_sequential_for_serving(sequential_model_dir, tmp_path)
    expected = tf.saved_model.load(str(saved)).signatures["serving_default"](
        **{name: tf.constant(value) for name, value in raw.items()}
    )["probability"]
    assert actual.shape == (len(raw["user"]), 1)
    assert np.abs(actual - expected.numpy()).max() <= 1e-5
    assert np.std(actual) > 1e-5


def test_bad_format_and_multi_hot_models_are_refused(
    ranking_model_dir, tmp_path, capsys
):
    argv = ["export", "--model", str(ranking_model_dir), "--output", "x"]
    assert main(argv + ["--format", "tflite"]) == 2
    assert "--format" in capsys.readouterr().err

    table = tmp_path / "table_model"
    shutil.copytree(ranking_model_dir, table)
    adrec_data.MultiHotLookup(["tags"], [["a", "b"]]).save_artifacts(
        table / "preprocessing"
    )
    with pytest.raises(ValueError, match="multi-hot"):
        export_onnx(table, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_one_output_folder_holds_one_format(
    ranking_model_dir, ranking_saved_model, tmp_path, capsys
):
    saved = ranking_saved_model.parent
    argv = ["export", "--model", str(ranking_model_dir), "--format", "onnx"]
    assert main(argv + ["--output", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and "saved_model versions" in err
    assert sorted(p.name for p in saved.iterdir()) == ["1"]
    onnx_dir = tmp_path / "onnx"
    export_onnx(ranking_model_dir, onnx_dir)
    with pytest.raises(ValueError, match="onnx versions"):
        export_for_serving(ranking_model_dir, onnx_dir)
