"""`adrec export --xla`: the forward pass compiled with XLA gives the
same predictions through the same signatures."""

import json

import numpy as np
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.cli import main


def test_xla_export_matches_the_graph_export(
    ranking_model_dir, ranking_saved_model, criteo_file, tmp_path, capsys
):
    argv = ["export", "--model", str(ranking_model_dir), "--xla"]
    assert main(argv + ["--output", str(tmp_path / "xla")]) == 0
    capsys.readouterr()
    xla = tmp_path / "xla" / "1"
    metadata = json.loads((xla / "assets.extra/adrec_serving.json").read_text())
    assert metadata["jit_compile"] is True
    assert "--xla_cpu_compilation_enabled" in metadata["jit_compile_note"]
    plain = ranking_saved_model
    plain_metadata = json.loads(
        (plain / "assets.extra/adrec_serving.json").read_text()
    )
    assert plain_metadata["jit_compile"] is False

    raw, _ = next(iter(adrec_data.criteo_dataset(criteo_file, 256)))
    outputs = {}
    for name, path in (("xla", xla), ("plain", plain)):
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        outputs[name] = serve(
            dense=raw["dense"], categorical=raw["categorical"]
        )["probability"].numpy()
    np.testing.assert_allclose(outputs["xla"], outputs["plain"], atol=1e-6)
    assert np.ptp(outputs["plain"]) > 1e-3


def test_xla_applies_to_the_saved_model_only(ranking_model_dir, capsys):
    argv = ["export", "--model", str(ranking_model_dir), "--output", "x"]
    assert main(argv + ["--xla", "--format", "onnx"]) == 2
    assert "--xla" in capsys.readouterr().err
