"""Export a trained ranking model as a versioned SavedModel for TF Serving.

`export_for_serving(model_dir, export_dir)` (or `adrec export --model DIR
--output EXPORT_DIR [--version N]`) reads a directory written by
`adrec train` (`model.keras`, `preprocessing/`, `config.json`) and writes
`EXPORT_DIR/<version>/`, the layout TF Serving watches: a SavedModel that
needs neither Keras nor keras_adrec to load (`tf.saved_model.load`,
`tensorflow_model_server --model_base_path=EXPORT_DIR`). The fitted
`FeaturePreprocessor` runs inside the graph, so clients send raw features.

Signatures (all return `{"probability": float32 [batch, 1]}`, the click
probability):

- `serving_default`: raw features as two named tensors,
  - `dense`: float32 `[batch, num_dense]`, the raw values in schema order
    (Criteo: I1..I13, counts as read, not log-transformed; Avazu:
    `hour_of_day`, 0-23). A missing value is sent as NaN or as 0: the
    preprocessing maps NaN to 0 before `log(max(x, 0) + 1)`, as DLRM does,
    so both give the same prediction. JSON has no NaN: send 0.
  - `categorical`: string `[batch, num_categorical]`, the raw tokens in
    schema order, as they appear in the training files (Criteo: C1..C26,
    8-digit hex such as "68fd1e64"; Avazu: C1, banner_pos, site_id, ...,
    C21, such as "1005"). A missing value is "". A token unseen in training
    goes to the out-of-vocabulary id 0 (or its hash bucket in hashing
    mode); it never raises.
- `serve_examples`: `examples`, string `[batch]` of serialized
  `tf.train.Example` protos with one feature per schema column, named as
  in the schema (`keras_adrec.data.CRITEO_SCHEMA`: I1..I13 as
  `float_list`, C1..C26 as `bytes_list`). An absent dense feature reads as
  NaN (= missing, same as 0); an absent categorical feature reads as "".
  A dense feature sent as `int64_list` is rejected by the parser.

A model trained on a table with multi-hot columns (`adrec train --schema`)
takes a third input, `multi_hot`: string `[batch, num_multi_hot, L]`, each
column's list padded with "" to any common length L (a "" value is
padding); in `serve_examples` each multi-hot column is a `bytes_list` of
any length (integer lists sent as their decimal strings).

A tensor of the wrong dtype, of the wrong width or rank, or a batch size
that differs between `dense` and `categorical`, raises an
`InvalidArgumentError` (through `loaded.signatures[...]` or TF Serving) or a
`TypeError` (through the `tf.function` attribute `loaded.serving_default`).

Beside the SavedModel, `assets.extra/adrec_serving.json` describes the
signatures, the schema and the source model (TF Serving ignores it).

Example: TF Serving's REST API, for one Criteo row

```
POST /v1/models/adrec:predict
{"signature_name": "serving_default",
 "inputs": {"dense": [[1, 1, 5, 0, 1382, 4, 15, 2, 181, 1, 2, 0, 2]],
            "categorical": [["68fd1e64", "80e26c9b", ..., ""]]}}
-> {"outputs": {"probability": [[0.27]]}}
```
"""

import json
import pathlib

import keras
import numpy as np
import tensorflow as tf

from keras_adrec.data.kinds import kind_names
from keras_adrec.data.multi_hot_lookup import MultiHotLookup
from keras_adrec.export import warmup
from keras_adrec.export.signatures import EXAMPLES_SIGNATURE
from keras_adrec.export.signatures import OUTPUT_NAME
from keras_adrec.export.signatures import SERVING_SIGNATURE
from keras_adrec.export.versions import METADATA_FILE
from keras_adrec.export.versions import check_one_format
from keras_adrec.export.versions import export_provenance
from keras_adrec.export.versions import publish_version
from keras_adrec.export.versions import resolve_version
from keras_adrec.training.model_directory import ModelDirectory


def raw_input_signature(schema):
    """`tf.TensorSpec`s of `serving_default`: `[dense, categorical]`."""
    return [
        tf.TensorSpec([None, schema.num_dense], tf.float32, name="dense"),
        tf.TensorSpec(
            [None, schema.num_categorical], tf.string, name="categorical"
        ),
    ]


def example_feature_spec(schema):
    """`tf.io.parse_example` features of `serve_examples`, by column name.

    Dense columns are scalar float32 defaulting to NaN (missing);
    categorical columns are scalar strings defaulting to "" (missing).
    """
    spec = {
        name: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan"))
        for name in schema.dense_names
    }
    spec.update(
        {
            name: tf.io.FixedLenFeature([], tf.string, default_value="")
            for name in schema.categorical_names
        }
    )
    return spec


def export_for_serving(
    model_dir, export_dir, version=None, overwrite=False, jit_compile=False
):
    """Write `export_dir/<version>/`, a SavedModel taking raw features.

    Args:
        model_dir: str or path. A directory written by `adrec train` on
            ranking data (`keras_adrec.training.ModelDirectory`).
        export_dir: str or path. The model base path TF Serving watches;
            created if missing.
        version: positive int or None. The version folder; defaults to one
            more than the largest existing version (1 in an empty folder).
        overwrite: bool. Replace an existing version folder instead of
            raising. Defaults to `False`.
        jit_compile: bool. Compile the model's forward pass with XLA
            (`forward_pass`). Defaults to `False`.

    Returns:
        `pathlib.Path` of the version directory.

    The SavedModel is written to a hidden temporary folder beside it and
    renamed into place, so TF Serving never sees a half-written version.
    See the module docstring for the signatures.

    Example:

    ```python
    path = keras_adrec.export.export_for_serving("runs/rm1", "serving/rm1")
    loaded = tf.saved_model.load(str(path))
    loaded.signatures["serving_default"](
        dense=tf.zeros([1, 13]), categorical=tf.fill([1, 26], "")
    )["probability"]
    ```
    """
    export_dir = pathlib.Path(export_dir)
    check_one_format(export_dir, "saved_model")
    version = resolve_version(export_dir, version, overwrite)

    run = ModelDirectory(model_dir)
    run.check()
    kind = run.data_kind()
    if kind not in kind_names(task="ranking"):
        raise ValueError(
            f"The model in {model_dir} was trained on {kind!r} data; this "
            "export takes ranking models "
            f"({', '.join(kind_names(task='ranking'))})."
        )
    model, preprocessor, config = run.load_ranking()
    lookup = MultiHotLookup.load_artifacts(run.preprocessing_path)
    archive = build_export_archive(model, preprocessor, lookup, jit_compile)

    def write(staging):
        archive.write_out(str(staging), verbose=False)
        _write_metadata(staging, model_dir, config, preprocessor, version)
        record_jit_compile(staging, jit_compile)
        if lookup is not None:
            _add_multi_hot_metadata(staging, lookup)
        _write_warmup(staging, config, preprocessor.schema, lookup)

    return publish_version(export_dir, version, write, inputs=[model_dir])


def build_export_archive(model, preprocessor, lookup=None, jit_compile=False):
    """A `keras.export.ExportArchive` with the two serving endpoints.

    Args:
        model: a Keras model taking `{"dense", "sparse"}` (a
            `RankingModel`), returning probabilities `[batch, 1]`.
        preprocessor: the fitted `keras_adrec.data.FeaturePreprocessor`
            whose outputs `model` takes.
        lookup: the `keras_adrec.data.MultiHotLookup` of a table's
            multi-hot columns, or None.
        jit_compile: bool. Compile the model's forward pass with XLA
            (`forward_pass`). Defaults to `False`.

    Returns:
        The archive; `archive.write_out(path)` writes the SavedModel.
    """
    schema = preprocessor.schema
    if not preprocessor.built:
        preprocessor.build(
            {
                "dense": (None, schema.num_dense),
                "categorical": (None, schema.num_categorical),
            }
        )
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(preprocessor)
    forward = forward_pass(model, jit_compile)
    if lookup is not None:
        return _multi_hot_archive(archive, forward, preprocessor, lookup)

    def serve_raw(dense, categorical):
        dense = tf.ensure_shape(
            dense, [None, schema.num_dense], name="check_dense_shape"
        )
        categorical = tf.ensure_shape(
            categorical,
            [None, schema.num_categorical],
            name="check_categorical_shape",
        )
        same_batch = tf.debugging.assert_equal(
            tf.shape(dense)[0],
            tf.shape(categorical)[0],
            message="`dense` and `categorical` must have the same batch size",
        )
        with tf.control_dependencies([same_batch]):
            dense = tf.identity(dense)
        inputs = preprocessor({"dense": dense, "categorical": categorical})
        return {OUTPUT_NAME: tf.cast(forward(inputs), tf.float32)}

    feature_spec = example_feature_spec(schema)

    def serve_examples(examples):
        features = tf.io.parse_example(examples, feature_spec)
        dense = _stack_columns(features, schema.dense_names, tf.float32)
        categorical = _stack_columns(
            features, schema.categorical_names, tf.string
        )
        return serve_raw(dense, categorical)

    # The first endpoint registered is `serving_default`.
    archive.add_endpoint(
        SERVING_SIGNATURE,
        serve_raw,
        input_signature=raw_input_signature(schema),
    )
    archive.add_endpoint(
        EXAMPLES_SIGNATURE,
        serve_examples,
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
    )
    return archive


def forward_pass(model, jit_compile=False):
    """The model's inference call, `inputs -> probability`.

    With `jit_compile`, a `tf.function(jit_compile=True)`: XLA fuses the
    forward pass's many small ops, which cuts the fixed cost of a small
    batch most. XLA compiles once per input shape, so each new batch size
    pays one compilation (the warm-up records compile 1, 8 and 128), and
    TF Serving runs such a model only with
    `--xla_cpu_compilation_enabled=true` (see docs/serving.md). The
    preprocessing (string lookups) stays outside: XLA has no hash tables.
    """

    def forward(inputs):
        return model(inputs, training=False)

    if jit_compile:
        return tf.function(forward, jit_compile=True, autograph=False)
    return forward


def _multi_hot_archive(archive, forward, preprocessor, lookup):
    """The endpoints of a model with multi-hot columns (`lookup`)."""
    schema = preprocessor.schema
    lookup.build()
    archive.track(lookup)
    names = lookup.names

    def predict(dense, categorical, bags):
        inputs = preprocessor({"dense": dense, "categorical": categorical})
        inputs["multi_hot"] = lookup(bags)
        return {OUTPUT_NAME: tf.cast(forward(inputs), tf.float32)}

    def serve_raw(dense, categorical, multi_hot):
        multi_hot = tf.ensure_shape(
            multi_hot, [None, len(names), None], name="check_multi_hot_shape"
        )
        same_batch = tf.debugging.assert_equal(
            [tf.shape(categorical)[0], tf.shape(multi_hot)[0]],
            tf.shape(dense)[0],
            message="`dense`, `categorical` and `multi_hot` must have the "
            "same batch size",
        )
        with tf.control_dependencies([same_batch]):
            dense = tf.identity(dense)
        bags = [
            _drop_empty(tf.RaggedTensor.from_tensor(multi_hot[:, i]))
            for i in range(len(names))
        ]
        return predict(dense, categorical, bags)

    feature_spec = example_feature_spec(schema)
    feature_spec.update(
        {name: tf.io.RaggedFeature(tf.string) for name in names}
    )

    def serve_examples(examples):
        features = tf.io.parse_example(examples, feature_spec)
        dense = _stack_columns(features, schema.dense_names, tf.float32)
        categorical = _stack_columns(
            features, schema.categorical_names, tf.string
        )
        bags = [_drop_empty(features[name]) for name in names]
        return predict(dense, categorical, bags)

    archive.add_endpoint(
        SERVING_SIGNATURE,
        serve_raw,
        input_signature=raw_input_signature(schema)
        + [
            tf.TensorSpec([None, len(names), None], tf.string, name="multi_hot")
        ],
    )
    archive.add_endpoint(
        EXAMPLES_SIGNATURE,
        serve_examples,
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
    )
    return archive


def _write_warmup(version_dir, config, schema, lookup):
    """Write the TF Serving warm-up records and name them in the metadata."""
    dense, categorical, source = warmup.ranking_warmup_rows(config, schema)
    multi_hot, names = None, ()
    if lookup is not None:
        names = lookup.names
        multi_hot = np.full([len(dense), len(names), 1], b"", object)
    requests = warmup.ranking_warmup_requests(
        dense, categorical, schema, multi_hot, names
    )
    warmup.record_warmup(version_dir, requests, source)


def record_jit_compile(version_dir, jit_compile):
    """Record whether the forward pass is XLA-compiled, and what the model
    server then needs."""
    path = pathlib.Path(version_dir) / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["jit_compile"] = bool(jit_compile)
    if jit_compile:
        metadata["jit_compile_note"] = (
            "the forward pass is XLA-compiled: start tensorflow_model_server "
            "with --xla_cpu_compilation_enabled=true"
        )
    path.write_text(json.dumps(metadata, indent=2))


def _drop_empty(bag):
    """A ragged `[batch, None]` bag without its "" values (padding)."""
    keep = tf.not_equal(bag.flat_values, "")
    return tf.RaggedTensor.from_value_rowids(
        tf.boolean_mask(bag.flat_values, keep),
        tf.boolean_mask(bag.value_rowids(), keep),
        nrows=bag.nrows(),
    )


def _stack_columns(features, names, dtype):
    if not names:
        return tf.zeros([tf.shape(next(iter(features.values())))[0], 0], dtype)
    return tf.stack([features[name] for name in names], axis=1)


def _add_multi_hot_metadata(version_dir, lookup):
    """Describe the `multi_hot` input in `adrec_serving.json`."""
    path = pathlib.Path(version_dir) / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["multi_hot"] = {
        "names": lookup.names,
        "vocabulary_sizes": lookup.vocabulary_sizes,
    }
    metadata["signatures"][SERVING_SIGNATURE]["inputs"]["multi_hot"] = (
        f"string [batch, {len(lookup.names)}, L] "
        f"({', '.join(lookup.names)}); each list padded with ''"
    )
    path.write_text(json.dumps(metadata, indent=2))


def _write_metadata(version_dir, model_dir, config, preprocessor, version):
    schema = preprocessor.schema
    metadata = {
        **export_provenance("serving export", model_dir, version),
        "data_kind": config["data"]["kind"],
        "preset": config.get("preset"),
        "schema": schema.to_dict(),
        "vocabulary_sizes": preprocessor.vocabulary_sizes,
        "max_index_range": preprocessor.max_index_range,
        "signatures": {
            SERVING_SIGNATURE: {
                "inputs": {
                    "dense": f"float32 [batch, {schema.num_dense}] "
                    f"({', '.join(schema.dense_names)}); NaN or 0 = missing",
                    "categorical": f"string [batch, "
                    f"{schema.num_categorical}] "
                    f"({', '.join(schema.categorical_names)}); '' = missing",
                },
                "outputs": {OUTPUT_NAME: "float32 [batch, 1]"},
            },
            EXAMPLES_SIGNATURE: {
                "inputs": {
                    "examples": "string [batch] of serialized tf.train."
                    "Example; dense features float_list, categorical "
                    "features bytes_list, named as in `schema`"
                },
                "outputs": {OUTPUT_NAME: "float32 [batch, 1]"},
            },
        },
    }
    path = pathlib.Path(version_dir) / METADATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metadata, indent=2))
