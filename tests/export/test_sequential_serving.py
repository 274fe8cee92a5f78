"""Sequential (Taobao) SavedModel export: raw events in, Keras's output out."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_adrec.data import TaobaoVocabulary
from keras_adrec.data import prepare_taobao
from keras_adrec.export.sequential_serving import export_sequential_for_serving
from keras_adrec.jobs.train_sequential import TrainSequentialSettings
from keras_adrec.jobs.train_sequential import train_sequential
from keras_adrec.models import get_preset

# Runs in a fresh interpreter that cannot import keras_adrec: it loads the
# SavedModel with plain TensorFlow and scores the raw events.
_SERVE = r"""
import builtins, json, sys
import numpy as np
real_import = builtins.__import__
def guarded(name, *args, **kwargs):
    if name.split(".")[0] == "keras_adrec":
        raise ImportError("keras_adrec must not be needed to serve")
    return real_import(name, *args, **kwargs)
builtins.__import__ = guarded
import tensorflow as tf
export, points, out = sys.argv[1:4]
raw = np.load(points)
serve = tf.saved_model.load(export).signatures["serving_default"]
result = serve(
    user=tf.constant(raw["user"]),
    item=tf.constant(raw["item"]),
    category=tf.constant(raw["category"]),
    timestamp=tf.constant(raw["timestamp"]),
)
np.save(out, result["probability"].numpy())
print(json.dumps({"modules": sorted(
    m for m in sys.modules if m.split(".")[0] == "keras_adrec"
)}))
"""


def _write_events(path, num_users=14, events_per_user=34, seed=0):
    """A small UserBehavior.csv: users' events in time order, ids raw."""
    rng = np.random.default_rng(seed)
    lines = []
    for user in range(1, num_users + 1):
        times = 1511500000 + np.sort(
            rng.integers(0, 9 * 86400, events_per_user)
        )
        for t in times:
            # Items repeat within a user (as in Taobao); categories follow
            # the item. Some items appear only late: out-of-vocabulary ids.
            item = (
                int(rng.integers(1000, 1060))
                if rng.random() < 0.8
                else (int(rng.integers(5000, 9000)))
            )
            lines.append(f"{user * 7},{item},{item % 13 + 100},pv,{t}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("sequential_export")
    events = root / "events.csv"
    _write_events(events)
    model_dir = root / "run"
    train_sequential(
        TrainSequentialSettings(
            path=events,
            output=model_dir,
            preset=get_preset(
                "rm4", interaction="dot", epochs=1, batch_size=32
            ),
            seed=0,
            verbose=False,
        )
    )
    return events, model_dir


@pytest.mark.slow
def test_fresh_process_prediction_equals_keras(trained, tmp_path):
    events, model_dir = trained
    config = json.loads((model_dir / "config.json").read_text())
    vocabulary = TaobaoVocabulary.load_artifacts(model_dir / "preprocessing")
    split = prepare_taobao(
        str(events),
        vocabulary=vocabulary,
        seed=config["seed"],
        **config["preparation"],
    )
    points = split.validation
    # The comparison covers ids unseen in training (mapped to index 0).
    assert (points.sparse[:, :, 1] == 0).any()
    model = keras.saving.load_model(model_dir / "model.keras")
    expected = model.predict(points.features, verbose=0)
    # A model that learned nothing would make the comparison weak.
    assert np.std(expected) > 1e-4

    path = export_sequential_for_serving(model_dir, tmp_path / "serving")
    assert path.name == "1" and (path / "saved_model.pb").is_file()
    raw = tmp_path / "points.npz"
    np.savez(
        raw,
        user=points.raw_user.astype(np.int64),
        item=points.raw_item.astype(np.int64),
        category=points.raw_category.astype(np.int64),
        timestamp=points.timestamp.astype(np.int64),
    )
    out = tmp_path / "served.npy"
    script = tmp_path / "serve.py"
    script.write_text(_SERVE)
    result = subprocess.run(
        [sys.executable, str(script), str(path), str(raw), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = json.loads(result.stdout.strip().splitlines()[-1])["modules"]
    assert modules == []
    served = np.load(out)
    assert served.shape == expected.shape
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)


def test_versions_and_overwrite(trained, tmp_path):
    _, model_dir = trained
    first = export_sequential_for_serving(model_dir, tmp_path)
    second = export_sequential_for_serving(model_dir, tmp_path)
    assert (first.name, second.name) == ("1", "2")
    with pytest.raises(FileExistsError, match="already exists"):
        export_sequential_for_serving(model_dir, tmp_path, version=2)
    again = export_sequential_for_serving(
        model_dir, tmp_path, version=2, overwrite=True
    )
    assert again == second
    with pytest.raises(ValueError, match="version"):
        export_sequential_for_serving(model_dir, tmp_path, version=0)


def test_adrec_export_takes_a_taobao_model(trained, tmp_path, capsys):
    from keras_adrec.cli import main

    _, model_dir = trained
    status = main(
        ["export", "--model", str(model_dir), "--output", str(tmp_path)]
        + ["--version", "3"]
    )
    assert status == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == {"path": str(tmp_path / "3"), "version": 3}


def test_rejects_a_ranking_model_dir(tmp_path):
    (tmp_path / "model.keras").write_text("")
    (tmp_path / "config.json").write_text(
        json.dumps({"data": {"kind": "criteo"}})
    )
    with pytest.raises(ValueError, match="criteo"):
        export_sequential_for_serving(tmp_path, tmp_path / "out")
