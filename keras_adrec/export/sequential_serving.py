"""Export a trained sequential (Taobao) model as a versioned SavedModel.

`export_sequential_for_serving(model_dir, export_dir)` reads a directory
written by `adrec train --data taobao:PATH` (`model.keras`,
`preprocessing/` with the Taobao vocabularies, `config.json` with the
preparation settings) and writes `export_dir/<version>/`, the layout TF
Serving watches: a SavedModel that loads with plain `tf.saved_model.load`,
without Keras or keras_adrec. The vocabularies and the time feature run
inside the graph, so clients send the events as they come from the data.

Signature `serving_default` (returns `{"probability": float32 [batch, 1]}`,
the probability that the candidate event is a click):

- `user`: int64 `[batch]`, the raw user id.
- `item`: int64 `[batch, T]`, the raw item ids of the `T - 1` history
  events in time order, then the candidate item last.
- `category`: int64 `[batch, T]`, their raw category ids.
- `timestamp`: int64 `[batch, T]`, unix seconds of each event; the last one
  is the time at which the candidate is scored.
- `behavior` (only for a model trained with `use_behavior`): int64
  `[batch, T]`, 1..4 for pv, cart, fav, buy; the candidate's value is
  ignored (always 0, as in training).

`T` is the model's `history_length + 1` (21 for the presets). A raw id
outside the saved vocabularies maps to the out-of-vocabulary index 0, as
`TaobaoVocabulary.lookup` does; it never raises. The time feature is
computed as `prepare_taobao` computes it (in float64, then float32), so the
SavedModel gives the Keras model's prediction on the same points.

Beside the SavedModel, `assets.extra/adrec_serving.json` describes the
signature and the source model (TF Serving ignores it).
"""

import json
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

from keras_adrec.export import warmup
from keras_adrec.export.serving import OUTPUT_NAME
from keras_adrec.export.serving import SERVING_SIGNATURE
from keras_adrec.export.serving import forward_pass
from keras_adrec.export.serving import record_jit_compile
from keras_adrec.export.versions import check_one_format
from keras_adrec.export.versions import export_provenance
from keras_adrec.export.versions import publish_version
from keras_adrec.export.versions import resolve_version
from keras_adrec.training.model_directory import ModelDirectory

METADATA_FILE = os.path.join("assets.extra", "adrec_serving.json")
_COLUMNS = ("user", "item", "category")


def export_sequential_for_serving(
    model_dir, export_dir, version=None, overwrite=False, jit_compile=False
):
    """Write `export_dir/<version>/`, a SavedModel taking raw Taobao events.

    Args:
        model_dir: str or path. A directory written by `adrec train` on
            Taobao data (`keras_adrec.jobs.train_sequential`).
        export_dir: str or path. The model base path TF Serving watches;
            created if missing.
        version: positive int or None. The version folder; defaults to one
            more than the largest existing version (1 in an empty folder).
        overwrite: bool. Replace an existing version folder instead of
            raising. Defaults to `False`.
        jit_compile: bool. Compile the model's forward pass with XLA
            (`keras_adrec.export.serving.forward_pass`). Defaults to
            `False`.

    Returns:
        `pathlib.Path` of the version directory.

    See the module docstring for the signature. The SavedModel is written
    to a hidden temporary folder beside it and renamed into place.

    Example:

    ```python
    path = export_sequential_for_serving("runs/rm4", "serving/rm4")
    loaded = tf.saved_model.load(str(path))
    loaded.signatures["serving_default"](
        user=tf.constant([1], tf.int64),
        item=tf.ones([1, 21], tf.int64),
        category=tf.ones([1, 21], tf.int64),
        timestamp=tf.fill([1, 21], tf.constant(1511544070, tf.int64)),
    )["probability"]
    ```
    """

    export_dir = pathlib.Path(export_dir)
    check_one_format(export_dir, "saved_model")
    model_dir = pathlib.Path(model_dir)
    version = resolve_version(export_dir, version, overwrite)
    run = ModelDirectory(model_dir)
    try:
        run.check()
    except FileNotFoundError as error:
        raise ValueError(str(error)) from None
    config = run.read_config()
    kind = config.get("data", {}).get("kind")
    if kind != "taobao":
        raise ValueError(
            f"The model in {model_dir} was trained on {kind!r} data; "
            "export_sequential_for_serving exports Taobao sequential models "
            "(use export_for_serving for criteo and avazu)."
        )
    model, vocabulary, _ = run.load_sequential()
    archive = build_sequential_export_archive(
        model, vocabulary, config["preparation"], jit_compile
    )

    def write(staging):
        archive.write_out(str(staging), verbose=False)
        _write_metadata(staging, model_dir, config, vocabulary, version)
        record_jit_compile(staging, jit_compile)
        raw, source = warmup.sequential_warmup_rows(
            config,
            vocabulary,
            int(config["preparation"].get("history_length", 20)) + 1,
            bool(getattr(model, "use_behavior", False)),
        )
        warmup.record_warmup(
            staging, warmup.sequential_warmup_requests(raw), source
        )

    return publish_version(export_dir, version, write, inputs=[model_dir])


def build_sequential_export_archive(
    model, vocabulary, preparation, jit_compile=False
):
    """A `keras.export.ExportArchive` with the raw-event endpoint.

    Args:
        model: a `SequentialRankingModel` taking `{"sparse", "dense"}`
            (and `"behavior"` with `use_behavior`).
        vocabulary: the `TaobaoVocabulary` the model was trained with.
        preparation: dict of `prepare_taobao` settings (`history_length`,
            `time_feature`).
        jit_compile: bool. Compile the model's forward pass with XLA.
            Defaults to `False`.

    Returns:
        The archive; `archive.write_out(path)` writes the SavedModel.
    """
    length = int(preparation.get("history_length", 20)) + 1
    time_feature = preparation.get("time_feature", "log_elapsed_hours")
    if time_feature not in ("log_elapsed_hours", "position"):
        raise ValueError(
            "`preparation['time_feature']` must be 'log_elapsed_hours' or "
            f"'position'. Received: {time_feature!r}"
        )
    use_behavior = bool(getattr(model, "use_behavior", False))
    tables = event_tables(vocabulary)
    forward = forward_pass(model, jit_compile)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for table in tables.values():
        archive.track(table)

    def serve(user, item, category, timestamp, behavior=None):
        item = tf.ensure_shape(item, [None, length])
        category = tf.ensure_shape(category, [None, length])
        timestamp = tf.ensure_shape(timestamp, [None, length])
        batch = tf.shape(item)[0]
        checks = [
            tf.debugging.assert_equal(
                tf.shape(tensor)[0],
                batch,
                message=f"`{name}` and `item` must have the same batch size",
            )
            for name, tensor in (
                ("user", user),
                ("category", category),
                ("timestamp", timestamp),
            )
        ]
        with tf.control_dependencies(checks):
            user = tf.identity(user)
        inputs = events_to_inputs(
            tables,
            time_feature,
            dict(
                user=user,
                item=item,
                category=category,
                timestamp=timestamp,
                behavior=behavior if use_behavior else None,
            ),
        )
        return {OUTPUT_NAME: tf.cast(forward(inputs), tf.float32)}

    signature = raw_event_signature(length, use_behavior)
    if use_behavior:
        endpoint = serve
    else:

        def endpoint(user, item, category, timestamp):
            return serve(user, item, category, timestamp)

    archive.add_endpoint(SERVING_SIGNATURE, endpoint, input_signature=signature)
    return archive


def event_tables(vocabulary):
    """Raw id -> index `tf.lookup.StaticHashTable` of user, item and
    category (index 0, out of vocabulary, for an unseen id)."""
    tables = {}
    for column in _COLUMNS:
        ids = vocabulary.vocabulary(column)
        tables[column] = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(ids, tf.int64),
                tf.constant(np.arange(1, len(ids) + 1), tf.int32),
            ),
            default_value=0,
        )
    return tables


def events_to_inputs(tables, time_feature, raw):
    """Raw events -> the model's inputs, as `prepare_taobao` maps them.

    Args:
        tables: `event_tables(vocabulary)`.
        time_feature: `"log_elapsed_hours"` or `"position"`.
        raw: dict of int64 tensors `user` `[B]`, `item`, `category`,
            `timestamp` `[B, T]` and `behavior` `[B, T]` or None.

    Returns:
        dict `sparse` int32 `[B, T, 3]`, `dense` float32 `[B, T, 1]` and,
        when `raw["behavior"]` is given, `behavior` int32 `[B, T]` (the
        candidate's set to 0).
    """
    item, timestamp = raw["item"], raw["timestamp"]
    batch, length = tf.shape(item)[0], tf.shape(item)[1]
    users = tf.broadcast_to(raw["user"][:, None], [batch, length])
    sparse = tf.stack(
        [
            tables["user"].lookup(users),
            tables["item"].lookup(item),
            tables["category"].lookup(raw["category"]),
        ],
        axis=-1,
    )
    if time_feature == "log_elapsed_hours":
        elapsed = tf.cast(timestamp[:, -1:] - timestamp, tf.float64)
        dense = tf.math.log1p(elapsed / 3600.0)
    else:
        positions = tf.range(length, dtype=tf.float64) / tf.cast(
            length, tf.float64
        )
        dense = tf.broadcast_to(positions, [batch, length])
    inputs = {"sparse": sparse, "dense": tf.cast(dense, tf.float32)[..., None]}
    if raw.get("behavior") is not None:
        behavior = tf.cast(raw["behavior"], tf.int32)
        inputs["behavior"] = tf.concat(
            [behavior[:, :-1], tf.zeros([batch, 1], tf.int32)], axis=1
        )
    return inputs


def raw_event_signature(length, use_behavior=False):
    """`tf.TensorSpec`s of `serving_default` for `T = length` events."""
    signature = [
        tf.TensorSpec([None], tf.int64, name="user"),
        tf.TensorSpec([None, length], tf.int64, name="item"),
        tf.TensorSpec([None, length], tf.int64, name="category"),
        tf.TensorSpec([None, length], tf.int64, name="timestamp"),
    ]
    if use_behavior:
        signature.append(
            tf.TensorSpec([None, length], tf.int64, name="behavior")
        )
    return signature


def _write_metadata(version_dir, model_dir, config, vocabulary, version):
    length = int(config["preparation"].get("history_length", 20)) + 1
    inputs = {
        "user": "int64 [batch], raw user id",
        "item": f"int64 [batch, {length}], raw item ids, candidate last",
        "category": f"int64 [batch, {length}], raw category ids",
        "timestamp": f"int64 [batch, {length}], unix seconds",
    }
    if (config.get("preset") or {}).get("use_behavior"):
        inputs["behavior"] = f"int64 [batch, {length}], 1..4 pv/cart/fav/buy"
    metadata = {
        **export_provenance("sequential serving export", model_dir, version),
        "data_kind": "taobao",
        "preset": config.get("preset"),
        "preparation": config.get("preparation"),
        "vocabulary_sizes": vocabulary.vocabulary_sizes,
        "signatures": {
            SERVING_SIGNATURE: {
                "inputs": inputs,
                "outputs": {OUTPUT_NAME: "float32 [batch, 1]"},
            }
        },
    }
    path = pathlib.Path(version_dir) / METADATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metadata, indent=2))
