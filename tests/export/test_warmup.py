"""TF Serving warm-up records (`assets.extra/tf_serving_warmup_requests`).

Each record is parsed as TF Serving parses it (a `PredictionLog` of
`tensorflow-serving-api`) and replayed through the SavedModel loaded with
plain `tf.saved_model.load`, as TF Serving replays it at load time.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_adrec.export import export_for_serving
from keras_adrec.export import export_sequential_for_serving
from keras_adrec.export import warmup

pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")


def _replay(version_dir):
    """Every warm-up request through its signature; `(signature, batch)`
    of each."""
    loaded = tf.saved_model.load(str(version_dir))
    seen = []
    for signature, inputs in warmup.read_warmup_requests(version_dir):
        outputs = loaded.signatures[signature](
            **{name: tf.constant(value) for name, value in inputs.items()}
        )
        probability = outputs["probability"].numpy()
        batch = len(next(iter(inputs.values())))
        assert probability.shape == (batch, 1), signature
        assert np.isfinite(probability).all(), signature
        assert ((probability >= 0) & (probability <= 1)).all()
        seen.append((signature, batch))
    return seen


def _metadata(version_dir):
    path = version_dir / "assets.extra" / "adrec_serving.json"
    return json.loads(path.read_text())


def test_ranking_export_replays_every_warmup_record(
    ranking_model_dir, ranking_saved_model
):
    path = ranking_saved_model
    assert (path / warmup.WARMUP_FILE).is_file()
    seen = _replay(path)
    assert sorted(seen) == sorted(
        (signature, batch)
        for signature in ("serving_default", "serve_examples")
        for batch in (1, 8, 128)
    )
    entry = _metadata(path)["warmup"]
    assert entry["records"] == 6
    assert entry["rows"].startswith("training data (criteo)")
    # The rows are the training file's first rows, not placeholders.
    signature, inputs = warmup.read_warmup_requests(path)[0]
    assert signature == "serving_default"
    config = json.loads((ranking_model_dir / "config.json").read_text())
    with open(config["data"]["paths"][0], encoding="utf-8") as f:
        first = f.readline().rstrip("\n").split("\t")
    assert [t.decode() for t in inputs["categorical"][0]] == first[14:]


def test_warmup_rows_without_the_training_files(ranking_model_dir):
    from keras_adrec import data as adrec_data

    config = {"data": {"kind": "criteo", "paths": ["/absent/train.txt"]}}
    dense, categorical, source = warmup.ranking_warmup_rows(
        config, adrec_data.CRITEO_SCHEMA
    )
    assert "synthetic" in source
    assert dense.shape == (128, 13) and categorical.shape == (128, 26)
    config = {"data": {"kind": "avazu", "paths": []}}
    dense, categorical, source = warmup.ranking_warmup_rows(
        config, adrec_data.AVAZU_SCHEMA
    )
    assert "missing" in source and categorical.shape == (1, 21)
    requests = warmup.ranking_warmup_requests(
        dense, categorical, adrec_data.AVAZU_SCHEMA
    )
    batches = [len(next(iter(i.values()))) for _, i in requests]
    assert batches == [1, 1, 8, 8, 128, 128]


def test_sequential_export_replays_every_warmup_record(
    sequential_model_dir, tmp_path
):
    path = export_sequential_for_serving(sequential_model_dir, tmp_path)
    seen = _replay(path)
    assert sorted(seen) == [("serving_default", b) for b in (1, 8, 128)]
    entry = _metadata(path)["warmup"]
    assert entry["rows"].startswith("training data (taobao)")
    requests = warmup.read_warmup_requests(path)
    timestamps = requests[-1][1]["timestamp"]
    assert timestamps.shape == (128, 21)
    assert (np.diff(timestamps, axis=1) >= 0).all()


def test_sequential_warmup_rows_without_the_events(sequential_model_dir):
    from keras_adrec.data import TaobaoVocabulary

    vocabulary = TaobaoVocabulary.load_artifacts(
        sequential_model_dir / "preprocessing"
    )
    config = {"data": {"paths": ["/absent.csv"]}, "cut_time": 1511600000}
    raw, source = warmup.sequential_warmup_rows(config, vocabulary, 21, True)
    assert "vocabulary" in source
    assert raw["item"].shape == (128, 21) and raw["behavior"].min() == 1
    assert set(raw["user"]) <= set(vocabulary.vocabulary("user"))
    assert (raw["timestamp"][:, -1] == 1511600000).all()


def test_without_tensorflow_serving_api_the_export_still_serves(
    ranking_model_dir, tmp_path, monkeypatch
):
    # `None` in sys.modules makes the import raise ImportError, as an
    # environment without the `serving` extra does.
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    with pytest.warns(UserWarning, match=r"keras-adrec\[serving\]"):
        path = export_for_serving(ranking_model_dir, tmp_path)
    assert not (path / warmup.WARMUP_FILE).exists()
    entry = _metadata(path)["warmup"]
    assert entry["file"] is None and "tensorflow-serving-api" in entry["reason"]
    assert (path / "saved_model.pb").is_file()


@pytest.mark.slow
def test_importing_the_export_package_needs_no_serving_extra():
    code = (
        "import sys, keras_adrec.export, keras_adrec.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('onnx', 'onnxruntime', 'tf2onnx', 'tensorflow_serving')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
