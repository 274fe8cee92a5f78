"""TF Serving warm-up records: requests replayed when a version loads.

TF Serving reads `assets.extra/tf_serving_warmup_requests` of a SavedModel
version (a TFRecord of `tensorflow_serving.apis.PredictionLog` protos) and
runs each request before it marks the version available, so the first real
requests after a deploy do not pay for graph initialisation and memory
allocation. `adrec export` writes one request per signature and batch size
(`WARMUP_BATCH_SIZES`), built from the first rows of the training data.

The protos come from the `tensorflow-serving-api` package (the `serving`
extra: `pip install "keras-adrec[serving]"`), imported only here, when the
records are written or read.
"""

import gzip
import itertools
import json
import os
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.export.signatures import EXAMPLES_SIGNATURE
from keras_adrec.export.signatures import SERVING_SIGNATURE
from keras_adrec.export.versions import METADATA_FILE

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_BATCH_SIZES = (1, 8, 128)


def serving_apis():
    """`(model_pb2, predict_pb2, prediction_log_pb2)` of
    `tensorflow-serving-api`, or an `ImportError` saying how to install it."""
    try:
        from tensorflow_serving.apis import model_pb2
        from tensorflow_serving.apis import predict_pb2
        from tensorflow_serving.apis import prediction_log_pb2
    except ImportError as error:
        raise ImportError(
            "TF Serving warm-up records need the tensorflow-serving-api "
            'package: pip install "keras-adrec[serving]" '
            f"({error})."
        ) from None
    return model_pb2, predict_pb2, prediction_log_pb2


def write_warmup_requests(version_dir, requests):
    """Write `version_dir/assets.extra/tf_serving_warmup_requests`.

    Args:
        version_dir: str or path. A SavedModel version folder.
        requests: iterable of `(signature_name, inputs)`, `inputs` a dict
            of input name -> numpy array (or anything
            `tf.make_tensor_proto` takes).

    Returns:
        The number of records written.
    """
    model_pb2, predict_pb2, prediction_log_pb2 = serving_apis()
    path = pathlib.Path(version_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(signature_name=signature)
            )
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
            count += 1
    return count


def record_warmup(version_dir, requests, source):
    """Write the warm-up records and describe them in the version's
    `assets.extra/adrec_serving.json` (`"warmup"`).

    Without `tensorflow-serving-api` installed, no records are written:
    a warning says how to get them and the metadata says why they are
    absent. The SavedModel serves the same either way.
    """
    requests = list(requests)
    try:
        count = write_warmup_requests(version_dir, requests)
        entry = {
            "file": WARMUP_FILE.replace(os.sep, "/"),
            "records": count,
            "batch_sizes": list(WARMUP_BATCH_SIZES),
            "signatures": sorted({name for name, _ in requests}),
            "rows": source,
        }
    except ImportError as error:
        warnings.warn(f"No warm-up records written: {error}", stacklevel=3)
        entry = {"file": None, "reason": str(error)}
    path = pathlib.Path(version_dir) / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["warmup"] = entry
    path.write_text(json.dumps(metadata, indent=2))
    return entry


def read_warmup_requests(version_dir):
    """The records of `write_warmup_requests`, as
    `[(signature_name, {input name: numpy array})]`."""
    _, _, prediction_log_pb2 = serving_apis()
    path = pathlib.Path(version_dir) / WARMUP_FILE
    requests = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        inputs = {
            name: tf.make_ndarray(proto)
            for name, proto in request.inputs.items()
        }
        requests.append((request.model_spec.signature_name, inputs))
    return requests


def cycle_rows(array, rows):
    """The first `rows` rows of `array`, repeated from the top if short."""
    array = np.asarray(array)
    index = np.arange(rows) % len(array)
    return array[index]


def ranking_warmup_requests(
    dense, categorical, schema, multi_hot=None, multi_hot_names=()
):
    """Warm-up requests of a ranking export, both signatures.

    Args:
        dense: float32 `[N, num_dense]` raw rows (NaN = missing).
        categorical: bytes `[N, num_categorical]` raw tokens.
        schema: the `DatasetSchema` of the rows.
        multi_hot: bytes `[N, num_multi_hot, L]` or None.
        multi_hot_names: the multi-hot column names (with `multi_hot`).

    Returns:
        A list of `(signature_name, inputs)`, one per signature and batch
        size of `WARMUP_BATCH_SIZES`.
    """
    requests = []
    for batch in WARMUP_BATCH_SIZES:
        raw = {
            "dense": cycle_rows(dense, batch).astype(np.float32),
            "categorical": cycle_rows(categorical, batch).astype(object),
        }
        if multi_hot is not None:
            raw["multi_hot"] = cycle_rows(multi_hot, batch).astype(object)
        requests.append((SERVING_SIGNATURE, raw))
        examples = serialize_examples(
            raw["dense"],
            raw["categorical"],
            schema,
            raw.get("multi_hot"),
            multi_hot_names,
        )
        requests.append((EXAMPLES_SIGNATURE, {"examples": examples}))
    return requests


def serialize_examples(
    dense, categorical, schema, multi_hot=None, multi_hot_names=()
):
    """Serialized `tf.train.Example`s of raw rows, as `serve_examples`
    takes them: a missing dense value (NaN) and a missing token ("") are
    left out of the proto; a multi-hot list keeps its non-empty tokens."""
    serialized = []
    for row in range(len(dense)):
        feature = {}
        for name, value in zip(schema.dense_names, dense[row]):
            if not np.isnan(value):
                feature[name] = tf.train.Feature(
                    float_list=tf.train.FloatList(value=[value])
                )
        for name, value in zip(schema.categorical_names, categorical[row]):
            if value:
                feature[name] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[_bytes(value)])
                )
        if multi_hot is not None:
            for name, values in zip(multi_hot_names, multi_hot[row]):
                feature[name] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(
                        value=[_bytes(v) for v in values if v]
                    )
                )
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        serialized.append(example.SerializeToString())
    return np.array(serialized, dtype=object)


def _bytes(value):
    return value if isinstance(value, bytes) else str(value).encode()


def sequential_warmup_requests(raw):
    """Warm-up requests of a sequential export (`serving_default`).

    Args:
        raw: dict of the signature's inputs (`user` `[N]`, `item`,
            `category`, `timestamp` and optional `behavior` `[N, T]`),
            int64 raw values.

    Returns:
        A list of `(signature_name, inputs)`, one per batch size of
        `WARMUP_BATCH_SIZES`.
    """
    return [
        (
            SERVING_SIGNATURE,
            {
                name: cycle_rows(value, batch).astype(np.int64)
                for name, value in raw.items()
            },
        )
        for batch in WARMUP_BATCH_SIZES
    ]


def ranking_warmup_rows(config, schema, rows=max(WARMUP_BATCH_SIZES)):
    """`(dense, categorical, source)`: the first `rows` training rows.

    Reads `config["data"]["paths"]` (the training files `adrec train`
    recorded) with the data kind's reader and the run's `on_bad_lines`.
    When they are gone or unreadable, Criteo-schema models get rows of the
    embedded synthetic data (`SyntheticCriteo`) and other schemas (tables
    read through a schema file included) get rows of missing values;
    `source` says which.
    """
    kind = config.get("data", {}).get("kind")
    paths = config.get("data", {}).get("paths") or []
    reader = None
    try:
        reader = adrec_data.data_kind(kind, task="ranking").reader
    except ValueError:
        pass
    if reader is not None and paths:
        try:
            dataset = reader(
                paths, rows, on_bad_lines=config.get("on_bad_lines", "error")
            )
            raw, _ = next(iter(dataset))
            return (
                raw["dense"].numpy(),
                raw["categorical"].numpy(),
                f"training data ({kind}): first {len(raw['dense'])} rows",
            )
        except (StopIteration, OSError, tf.errors.OpError, ValueError):
            pass
    if schema.name == adrec_data.CRITEO_SCHEMA.name:
        generator = adrec_data.SyntheticCriteo(
            rows_per_day=rows, num_days=1, seed=0
        )
        raw, _ = next(iter(generator.dataset(days=[0], batch_size=rows)))
        return (
            raw["dense"].numpy(),
            raw["categorical"].numpy(),
            "embedded synthetic Criteo rows (the training files are gone)",
        )
    dense = np.full([1, schema.num_dense], np.nan, np.float32)
    categorical = np.full([1, schema.num_categorical], b"", object)
    return dense, categorical, "rows of missing values (no training rows)"


def sequential_warmup_rows(config, vocabulary, length, use_behavior):
    """`(raw, source)`: up to 128 histories from the training events.

    The first 20,000 lines of the training file (`config["data"]
    ["paths"]`), the last `length` events of each user that has that many,
    in time order. When the file is gone or holds no such user, the
    histories are made of the vocabularies' ids (ids seen in training)
    one hour apart, ending at the training cut time; `source` says which.
    """
    paths = config.get("data", {}).get("paths") or []
    rows = max(WARMUP_BATCH_SIZES)
    try:
        events = _head_events(paths[0], 20_000) if paths else None
    except (OSError, ValueError):
        events = None
    histories = []
    if events is not None:
        order = np.lexsort((events[:, 4], events[:, 0]))
        events = events[order]
        for _, group in itertools.groupby(events, key=lambda e: e[0]):
            group = np.array(list(group))
            if len(group) >= length:
                histories.append(group[-length:])
            if len(histories) == rows:
                break
    if histories:
        histories = np.stack(histories)
        raw = {
            "user": histories[:, 0, 0],
            "item": histories[:, :, 1],
            "category": histories[:, :, 2],
            "timestamp": histories[:, :, 4],
        }
        if use_behavior:
            raw["behavior"] = histories[:, :, 3]
        return raw, f"training data (taobao): {len(histories)} histories"
    users = np.asarray(vocabulary.vocabulary("user"), np.int64)
    items = np.asarray(vocabulary.vocabulary("item"), np.int64)
    categories = np.asarray(vocabulary.vocabulary("category"), np.int64)
    end = int(config.get("cut_time") or 1_511_568_000)
    index = np.arange(rows * length).reshape(rows, length)
    raw = {
        "user": cycle_rows(users, rows),
        "item": cycle_rows(items, rows * length).reshape(rows, length),
        "category": cycle_rows(categories, rows * length).reshape(rows, length),
        "timestamp": end - 3600 * (length - 1 - index % length),
    }
    if use_behavior:
        raw["behavior"] = np.ones([rows, length], np.int64)
    return raw, "vocabulary ids (the training events are gone)"


_BEHAVIORS = {"pv": 1, "cart": 2, "fav": 3, "buy": 4}


def _head_events(path, lines):
    """int64 `[N, 5]` (user, item, category, behavior id, timestamp) of the
    first `lines` well-formed lines of a `UserBehavior.csv`."""
    events = []
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if compressed else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in itertools.islice(f, lines):
            fields = line.strip().split(",")
            if len(fields) != 5 or fields[3] not in _BEHAVIORS:
                continue
            try:
                user, item, category, timestamp = (
                    int(fields[i]) for i in (0, 1, 2, 4)
                )
            except ValueError:
                continue
            events.append(
                (user, item, category, _BEHAVIORS[fields[3]], timestamp)
            )
    return np.array(events, np.int64) if events else None
