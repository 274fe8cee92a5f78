"""Export a trained model as ONNX, for ONNX Runtime, Triton and the like.

`export_onnx(model_dir, export_dir)` (or `adrec export --format onnx`)
writes `export_dir/<version>/model.onnx`, the layout Triton's model
repository and TF Serving share, beside `preprocessing/` (a copy of the
model directory's vocabularies) and `assets.extra/adrec_serving.json`.

The ONNX graph is the Keras model's forward pass (Keras 3's
`model.export(format="onnx")`, tf2onnx underneath): it takes the model's
inputs, the preprocessed features, not the raw ones. The vocabulary
lookups stay outside: ONNX has no string hash table that tf2onnx converts
(TensorFlow's `LookupTableFindV2` on a table captured by a `tf.function`
fails in tf2onnx with "Could not determine table shared name") and
tf2onnx has no `Log1p`. `OnnxInputMapper(version_dir)` maps raw rows to
the ONNX inputs with the saved vocabularies, exactly as the SavedModel's
`serving_default` does in-graph:

- ranking models: `dense` float32 `[batch, num_dense]` (`log(max(x, 0) +
  1)`, NaN -> 0) and `sparse` int32 `[batch, num_categorical]` (ids);
- sequential models: `sparse` int32 `[batch, T, 3]` (user, item, category
  ids), `dense` float32 `[batch, T, 1]` (the time feature) and, with
  `use_behavior`, `behavior` int32 `[batch, T]`.

The output is `probability`, float32 `[batch, 1]`. The packages (`onnx`,
`onnxruntime`, `tf2onnx`) are the `serving` extra, imported only here.

Example:

```python
path = keras_adrec.export.export_onnx("runs/rm1", "onnx/rm1")
session = onnxruntime.InferenceSession(str(path / "model.onnx"))
mapper = keras_adrec.export.OnnxInputMapper(path)
session.run(None, mapper({"dense": dense, "categorical": categorical}))
```
"""

import contextlib
import io
import json
import pathlib
import shutil

import numpy as np
import tensorflow as tf

from keras_adrec.data.feature_preprocessor import FeaturePreprocessor
from keras_adrec.data.kinds import data_kind
from keras_adrec.data.multi_hot_lookup import MultiHotLookup
from keras_adrec.data.taobao_vocabulary import TaobaoVocabulary
from keras_adrec.export.sequential_serving import event_tables
from keras_adrec.export.sequential_serving import events_to_inputs
from keras_adrec.export.signatures import OUTPUT_NAME
from keras_adrec.export.versions import METADATA_FILE
from keras_adrec.export.versions import check_one_format
from keras_adrec.export.versions import export_provenance
from keras_adrec.export.versions import publish_version
from keras_adrec.export.versions import resolve_version
from keras_adrec.training.model_directory import PREPROCESSING_DIR
from keras_adrec.training.model_directory import ModelDirectory

ONNX_FILE = "model.onnx"


def export_onnx(model_dir, export_dir, version=None, overwrite=False):
    """Write `export_dir/<version>/model.onnx` of a trained model.

    Args:
        model_dir: str or path. A directory written by `adrec train`
            (ranking or sequential data; not a table model with
            multi-hot columns).
        export_dir: str or path. The model base path; created if missing.
        version: positive int or None. The version folder; defaults to one
            more than the largest existing version.
        overwrite: bool. Replace an existing version folder (an adrec
            export) instead of raising. Defaults to `False`.

    Returns:
        `pathlib.Path` of the version directory.

    Raises:
        ValueError: `export_dir` holds SavedModel versions (a model
            server would load the largest version, whatever it holds), or
            the model takes multi-hot columns.
    """
    export_dir = pathlib.Path(export_dir)
    check_one_format(export_dir, "onnx")
    version = resolve_version(export_dir, version, overwrite)
    run = ModelDirectory(model_dir)
    run.check()
    config = run.read_config()
    kind = config.get("data", {}).get("kind")
    task = data_kind(kind).task
    if task == "sequential":
        model = run.load_sequential()[0]
        length = int(config["preparation"].get("history_length", 20)) + 1
        signature = sequential_onnx_signature(
            length, bool(getattr(model, "use_behavior", False))
        )
    else:
        model, preprocessor, _ = run.load_ranking()
        if MultiHotLookup.load_artifacts(run.preprocessing_path) is not None:
            raise ValueError(
                f"The model in {model_dir} takes multi-hot columns; ONNX "
                "export takes models without them (use the SavedModel)."
            )
        signature = ranking_onnx_signature(preprocessor.schema)

    def write(staging):
        staging.mkdir(parents=True)
        write_onnx(model, signature, staging / ONNX_FILE)
        shutil.copytree(run.preprocessing_path, staging / PREPROCESSING_DIR)
        _write_metadata(staging, model_dir, config, signature, version)

    return publish_version(export_dir, version, write, inputs=[model_dir])


def ranking_onnx_signature(schema):
    """The ONNX inputs of a ranking model: `{dense, sparse}` specs."""
    return {
        "dense": tf.TensorSpec([None, schema.num_dense], tf.float32, "dense"),
        "sparse": tf.TensorSpec(
            [None, schema.num_categorical], tf.int32, "sparse"
        ),
    }


def sequential_onnx_signature(length, use_behavior=False):
    """The ONNX inputs of a sequential model of `T = length` events."""
    signature = {
        "sparse": tf.TensorSpec([None, length, 3], tf.int32, "sparse"),
        "dense": tf.TensorSpec([None, length, 1], tf.float32, "dense"),
    }
    if use_behavior:
        signature["behavior"] = tf.TensorSpec(
            [None, length], tf.int32, "behavior"
        )
    return signature


def write_onnx(model, signature, path):
    """Convert `model` (inputs: the dict `signature`) to ONNX at `path`,
    with its output named `probability`."""
    onnx = _onnx()
    # tf2onnx prints conversion notes to stdout; the command line's stdout
    # carries its JSON result only.
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(
            str(path), format="onnx", input_signature=[signature], verbose=0
        )
    proto = onnx.load(str(path))
    (old,) = [output.name for output in proto.graph.output]
    for node in proto.graph.node:
        node.output[:] = [OUTPUT_NAME if n == old else n for n in node.output]
    proto.graph.output[0].name = OUTPUT_NAME
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


class OnnxInputMapper:
    """Raw rows -> the ONNX model's inputs, with the export's vocabularies.

    Args:
        version_dir: str or path. A folder written by `export_onnx`.

    Call arguments:
        raw: dict of numpy arrays, the inputs `serving_default` of the
            SavedModel takes: `dense` and `categorical` (ranking), or
            `user`, `item`, `category`, `timestamp` and optional
            `behavior` (sequential).

    Returns:
        dict of numpy arrays keyed by the ONNX input names, for
        `onnxruntime.InferenceSession.run(None, inputs)`.
    """

    def __init__(self, version_dir):
        version_dir = pathlib.Path(version_dir)
        metadata = json.loads((version_dir / METADATA_FILE).read_text())
        self.task = metadata["task"]
        self.input_names = list(metadata["onnx_inputs"])
        preprocessing = version_dir / PREPROCESSING_DIR
        if self.task == "sequential":
            self.time_feature = metadata["preparation"].get(
                "time_feature", "log_elapsed_hours"
            )
            self.tables = event_tables(
                TaobaoVocabulary.load_artifacts(preprocessing)
            )
        else:
            self.preprocessor = FeaturePreprocessor.load_artifacts(
                preprocessing
            )

    def __call__(self, raw):
        if self.task == "sequential":
            raw = {
                name: tf.constant(np.asarray(raw[name]), tf.int64)
                for name in ("user", "item", "category", "timestamp")
            } | {
                "behavior": (
                    tf.constant(np.asarray(raw["behavior"]), tf.int64)
                    if "behavior" in self.input_names
                    else None
                )
            }
            inputs = events_to_inputs(self.tables, self.time_feature, raw)
        else:
            inputs = self.preprocessor(
                {
                    "dense": tf.constant(raw["dense"], tf.float32),
                    "categorical": tf.constant(raw["categorical"], tf.string),
                }
            )
        return {name: inputs[name].numpy() for name in self.input_names}


def _onnx():
    try:
        import onnx
        import tf2onnx  # noqa: F401 (Keras converts with it)
    except ImportError as error:
        raise ImportError(
            "ONNX export needs the onnx and tf2onnx packages: "
            f'pip install "keras-adrec[serving]" ({error}).'
        ) from None
    return onnx


def _write_metadata(version_dir, model_dir, config, signature, version):
    kind = config["data"]["kind"]
    metadata = {
        **export_provenance("onnx export", model_dir, version),
        "data_kind": kind,
        "task": data_kind(kind).task,
        "preset": config.get("preset"),
        "preparation": config.get("preparation"),
        "onnx_file": ONNX_FILE,
        "onnx_inputs": {
            name: f"{spec.dtype.name} {spec.shape.as_list()}".replace(
                "None", "batch"
            )
            for name, spec in signature.items()
        },
        "onnx_outputs": {OUTPUT_NAME: "float32 [batch, 1]"},
        "preprocessing": "preprocessing/: map raw rows to the inputs with "
        "keras_adrec.export.OnnxInputMapper",
    }
    path = pathlib.Path(version_dir) / METADATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metadata, indent=2))
