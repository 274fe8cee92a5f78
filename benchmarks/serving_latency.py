"""Serving latency and throughput, every serving path side by side.

Times, in one run and on the same held-out rows, the ways a trained model
answers requests:

- `serving_default` of the SavedModel written by
  `keras_adrec.export.export_for_serving` (raw dense + categorical
  tensors; the vocabulary lookups run in the graph), loaded with plain
  `tf.saved_model.load` and called as a model server calls it;
- `serve_examples` of the same SavedModel (serialized tf.Example);
- `serving_default` of the `--xla` export (`jit_compile` forward pass);
- both exports' `serving_default` as `tensorflow_model_server` runs it:
  one `Session.run` of the signature's tensors per request, with the
  benchmark's thread settings and with one thread per pool;
- the XLA export's `serving_default` in a session with one intra-op
  thread and one inter-op thread per core, called by one thread per core
  at once (how a model server's cores are kept busy; rows/s over the
  wall time of all callers);
- plain Keras `model.predict_on_batch` on preprocessed ids;
- the ONNX model of `keras_adrec.export.export_onnx` in ONNX Runtime, on
  preprocessed ids (`OnnxInputMapper`, untimed).

Each at batch 1 (latency p50 / p99 / mean over `--calls` timed calls after
`--warmup` untimed ones) and batch 1024 (rows/s over `--throughput-calls`
calls). Requests cycle through held-out raw rows (unseen tokens included).

Model: by default it trains a small RM1 Ad-Rec model (the RM1 preset
unchanged, one epoch) on the first 8,000 lines of the real Criteo sample
`criteo/train_head10k.txt` if present (`benchmarks.report.shared_data_file`:
`ADREC_DATA_DIR`, else `../shared/data` beside the checkout), else on
SYNTHETIC rows (`SyntheticCriteo`), and exports it to a temporary folder.
`--model-dir DIR` exports an existing `adrec train` directory instead;
`--export-dir DIR` times an existing SavedModel export only (a version
folder, or a base folder: the largest version). `--smoke` is a toy run
(tiny model, few calls) for tests. `--intra-op-threads` and
`--inter-op-threads` set TensorFlow's thread pools (and ONNX Runtime's
intra-op pool), as `tensorflow_model_server --tensorflow_intra_op_parallelism
--tensorflow_inter_op_parallelism` would.

Writes `serving_latency.md` and `serving_latency.json` to `--output-dir`
(default `benchmarks/results`) with the command, machine, load average,
versions and date.

Usage (from the repository root):
    python -m benchmarks.serving_latency
    python -m benchmarks.serving_latency --smoke --output-dir /tmp/bench
"""

import argparse
import gc
import json
import os
import pathlib
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import report as _report  # noqa: E402
from keras_adrec import data as adrec_data  # noqa: E402
from keras_adrec.export import EXAMPLES_SIGNATURE  # noqa: E402
from keras_adrec.export import SERVING_SIGNATURE  # noqa: E402
from keras_adrec.export import OnnxInputMapper  # noqa: E402
from keras_adrec.export import export_for_serving  # noqa: E402
from keras_adrec.export import export_onnx  # noqa: E402
from keras_adrec.export.warmup import serialize_examples  # noqa: E402
from keras_adrec.jobs.train_ranking import TrainRankingSettings  # noqa: E402
from keras_adrec.jobs.train_ranking import train_ranking  # noqa: E402
from keras_adrec.models import get_preset  # noqa: E402
from keras_adrec.training import ModelDirectory  # noqa: E402
from keras_adrec.utils import tune_malloc_for_training  # noqa: E402

REAL_SAMPLE = "criteo/train_head10k.txt"
AVAZU_SAMPLE = "avazu/train_head9999.csv"
REPORT_NAME = "serving_latency"
LATENCY_BATCH = 1
THROUGHPUT_BATCH = 1024
XLA = f"{SERVING_SIGNATURE} (XLA)"
SESSION = f"{SERVING_SIGNATURE} (Session)"
SESSION_1 = f"{SERVING_SIGNATURE} (Session, 1 thread)"
XLA_SESSION = f"{SERVING_SIGNATURE} (XLA, Session)"
XLA_SESSION_1 = f"{SERVING_SIGNATURE} (XLA, Session, 1 thread)"
# One caller per core, each request answered on one thread.
CALLERS = os.cpu_count() or 1
XLA_SESSION_CONCURRENT = (
    f"{SERVING_SIGNATURE} (XLA, Session, 1 thread, {CALLERS} callers)"
)
KERAS = "Keras predict_on_batch"
# Paths fed numpy arrays rather than tensors made beforehand.
NUMPY_INPUTS = (
    SESSION,
    SESSION_1,
    XLA_SESSION,
    XLA_SESSION_1,
    XLA_SESSION_CONCURRENT,
)
ONNX = "ONNX Runtime"
# What each path takes: raw features, or ids preprocessed beforehand.
INPUTS = {
    SERVING_SIGNATURE: "raw tensors",
    EXAMPLES_SIGNATURE: "tf.Example",
    XLA: "raw tensors",
    SESSION: "raw arrays",
    SESSION_1: "raw arrays",
    XLA_SESSION: "raw arrays",
    XLA_SESSION_1: "raw arrays",
    XLA_SESSION_CONCURRENT: "raw arrays",
    KERAS: "ids",
    ONNX: "ids",
}
# Issue 31's targets, on the raw-feature signature.
TARGET_P99_MS = 1.0
TARGET_ROWS_PER_S = 75_000


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model-dir", help="an `adrec train` directory")
    source.add_argument("--export-dir", help="an existing serving export")
    p.add_argument("--calls", type=int, default=None, help="timed calls (1000)")
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed calls (100)"
    )
    p.add_argument(
        "--throughput-calls",
        type=int,
        default=None,
        help="calls of 1024 rows (100)",
    )
    p.add_argument(
        "--train-lines",
        type=int,
        default=None,
        help="training lines (8000)",
    )
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="use synthetic rows even if the real sample is present",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="toy size: tiny model, 600 training lines, 30 calls",
    )
    for pool in ("intra", "inter"):
        p.add_argument(
            f"--{pool}-op-threads",
            type=int,
            default=None,
            help=f"TensorFlow {pool}-op threads (default: TensorFlow's)",
        )
    p.add_argument("--output-dir", default=_report.RESULTS_DIR)
    args = p.parse_args(argv)
    # (full run, --smoke) defaults; explicit flags win.
    defaults = {
        "calls": (1000, 30),
        "warmup": (100, 5),
        "throughput_calls": (100, 3),
        "train_lines": (8000, 600),
    }
    for name, values in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, values[int(args.smoke)])
    for name in ("calls", "warmup", "throughput_calls", "train_lines"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            p.error(f"--{name.replace('_', '-')} is too small")
    for name in ("intra_op_threads", "inter_op_threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def source_rows(args, work):
    """`(path, description, synthetic)` of a Criteo TSV to train and query."""
    needed = args.train_lines + THROUGHPUT_BATCH
    real = None if args.synthetic else _report.shared_data_file(REAL_SAMPLE)
    if real is not None:
        with open(real, encoding="utf-8") as f:
            lines = sum(1 for _ in f)
        if lines >= needed:
            return real, f"real Criteo sample `{REAL_SAMPLE}`", False
    generator = adrec_data.SyntheticCriteo(
        rows_per_day=needed, num_days=1, seed=0
    )
    path = generator.write_tsv(str(work / "synthetic"))[0]
    return path, f"SYNTHETIC Criteo rows (SyntheticCriteo, {needed})", True


def split_file(path, train_lines, work):
    """The first `train_lines` lines, then the next 1024 (held out)."""
    train = work / "train.txt"
    held_out = work / "held_out.txt"
    with (
        open(path, encoding="utf-8") as f,
        open(train, "w", encoding="utf-8") as t,
        open(held_out, "w", encoding="utf-8") as h,
    ):
        for index, line in enumerate(f):
            if index < train_lines:
                t.write(line)
            elif index < train_lines + THROUGHPUT_BATCH:
                h.write(line)
            else:
                break
    return train, held_out


def prepare_export(args, work):
    """Return `(version_dir, info, model_dir)`; trains and exports unless
    given (`model_dir` is None for `--export-dir`)."""
    info = {}
    if args.export_dir:
        path = pathlib.Path(args.export_dir)
        if not (path / "saved_model.pb").is_file():
            versions = [p for p in path.iterdir() if p.name.isdigit()]
            if not versions:
                raise SystemExit(f"No SavedModel version in {path}")
            path = max(versions, key=lambda p: int(p.name))
        info["model"] = f"existing export {path}"
        return path, info, None
    model_dir = args.model_dir
    if model_dir is None:
        source, description, synthetic = source_rows(args, work)
        train, _ = split_file(source, args.train_lines, work)
        overrides = (
            {"bottom_units": [32], "top_units": [32]} if args.smoke else {}
        )
        model_dir = work / "model"
        start = time.perf_counter()
        summary = train_ranking(
            TrainRankingSettings(
                data=f"criteo:{train}",
                output=str(model_dir),
                preset=get_preset("rm1", interaction="adrec", **overrides),
                verbose=False,
            )
        )
        info.update(
            {
                "model": "RM1 Ad-Rec"
                + (
                    " (smoke: bottom/top units [32])"
                    if args.smoke
                    else " (preset unchanged, 1 epoch)"
                ),
                "training_data": f"{description}, first "
                f"{args.train_lines} lines",
                "synthetic": synthetic,
                "train_seconds": round(time.perf_counter() - start, 1),
                "val_auc": round(summary["auc"], 4),
            }
        )
    else:
        info["model"] = f"trained model {model_dir}"
    start = time.perf_counter()
    path = export_for_serving(model_dir, work / "serving")
    info["export_seconds"] = round(time.perf_counter() - start, 1)
    return path, info, model_dir


def query_rows(args, work, schema):
    """1024 raw rows to send: held-out rows of the training source."""
    held_out = work / "held_out.txt"
    if schema.name == "avazu":
        held_out = _report.shared_data_file(AVAZU_SAMPLE)
        if held_out is None:
            raise SystemExit("An Avazu model needs the Avazu sample rows.")
    elif not held_out.is_file():
        source, _, _ = source_rows(args, work)
        _, held_out = split_file(source, args.train_lines, work)
    raw, _ = next(
        iter(adrec_data.make_dataset(schema.name, [str(held_out)], 1024))
    )
    return raw["dense"].numpy(), raw["categorical"].numpy()


def batches(arrays, batch_size, count, as_numpy=False):
    """`count` batches cycling through the rows, made up front: tensors,
    or numpy arrays for Keras and ONNX Runtime."""
    rows = len(arrays[0])
    out = []
    for i in range(count):
        start = (i * batch_size) % rows
        index = (np.arange(batch_size) + start) % rows
        convert = np.ascontiguousarray if as_numpy else tf.constant
        out.append([convert(a[index]) for a in arrays])
    return out


def time_calls(function, inputs, warmup):
    """Wall seconds of each call, and the process CPU seconds of all."""
    for args in inputs[: max(warmup, 1)]:
        function(*args)
    seconds = []
    cpu_start = time.process_time()
    for args in inputs:
        start = time.perf_counter()
        function(*args)
        seconds.append(time.perf_counter() - start)
    return np.array(seconds), time.process_time() - cpu_start


def time_concurrent(function, inputs, warmup, callers=CALLERS):
    """`time_calls` with `callers` threads calling at once, each through
    all of `inputs`: the seconds of every call, the process CPU seconds
    and the wall seconds of the whole (rows/s = all rows / wall)."""
    for args in inputs[: max(warmup, 1)]:
        function(*args)
    seconds = [[] for _ in range(callers)]
    errors = []
    start_line = threading.Barrier(callers + 1)

    def caller(own):
        start_line.wait()
        try:
            for args in inputs:
                start = time.perf_counter()
                function(*args)
                own.append(time.perf_counter() - start)
        except Exception as error:  # raised again in the calling thread
            errors.append(error)

    threads = [threading.Thread(target=caller, args=(own,)) for own in seconds]
    for thread in threads:
        thread.start()
    start_line.wait()
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall_start
    if errors:
        raise errors[0]
    return np.concatenate(seconds), time.process_time() - cpu_start, wall


def serving_paths(path, model_dir, work, dense, categorical, schema, args):
    """`{name: (function, arrays)}` of every path to time; `function(*row
    tensors)` answers a batch as a numpy array."""
    loaded = tf.saved_model.load(str(path))
    raw_fn = loaded.signatures[SERVING_SIGNATURE]
    examples_fn = loaded.signatures[EXAMPLES_SIGNATURE]

    def call_raw(d, c):
        return raw_fn(dense=d, categorical=c)["probability"].numpy()

    def call_examples(e):
        return examples_fn(examples=e)["probability"].numpy()

    serialized = serialize_examples(dense, categorical, schema)
    raw = [dense, categorical]
    paths = {
        SERVING_SIGNATURE: (call_raw, raw),
        EXAMPLES_SIGNATURE: (call_examples, [serialized]),
        SESSION: (session_call(path, args), raw),
        SESSION_1: (session_call(path, args, threads=1), raw),
    }
    if model_dir is None:
        return paths
    xla_path = export_for_serving(model_dir, work / "xla", jit_compile=True)
    xla_fn = tf.saved_model.load(str(xla_path)).signatures[SERVING_SIGNATURE]

    def call_xla(d, c):
        return xla_fn(dense=d, categorical=c)["probability"].numpy()

    paths[XLA] = (call_xla, raw)
    paths[XLA_SESSION] = (session_call(xla_path, args), raw)
    paths[XLA_SESSION_1] = (session_call(xla_path, args, threads=1), raw)
    if CALLERS > 1:
        concurrent = session_call(xla_path, args, pools=(1, CALLERS))
        paths[XLA_SESSION_CONCURRENT] = (concurrent, raw)
    model, preprocessor, _ = ModelDirectory(model_dir).load_ranking()
    ids = preprocessor(
        {"dense": tf.constant(dense), "categorical": tf.constant(categorical)}
    )
    ids = [ids["dense"].numpy(), ids["sparse"].numpy()]

    def call_keras(d, s):
        return model.predict_on_batch({"dense": d, "sparse": s})

    paths[KERAS] = (call_keras, ids)
    try:
        import onnxruntime
    except ImportError:
        _report.log("onnxruntime is not installed: no ONNX Runtime rows")
        return paths
    onnx_path = export_onnx(model_dir, work / "onnx")
    options = onnxruntime.SessionOptions()
    if args.intra_op_threads:
        options.intra_op_num_threads = args.intra_op_threads
    if args.inter_op_threads:
        options.inter_op_num_threads = args.inter_op_threads
    session = onnxruntime.InferenceSession(
        str(onnx_path / "model.onnx"),
        options,
        providers=["CPUExecutionProvider"],
    )
    feed = OnnxInputMapper(onnx_path)(
        {"dense": dense, "categorical": categorical}
    )
    names = list(feed)

    def call_onnx(*arrays):
        return session.run(None, dict(zip(names, arrays)))[0]

    paths[ONNX] = (call_onnx, [feed[name] for name in names])
    return paths


def session_call(path, args, threads=None, pools=None):
    """`serving_default` run as `tensorflow_model_server` runs it: the
    SavedModel loaded into a TF1 `Session` (what TF Serving's
    `SavedModelBundle` holds) and each request one `Session.run` of the
    signature's named tensors, fed numpy arrays; no Python function-call
    layer. `threads` sets both of the session's thread pools (TF Serving's
    `--tensorflow_intra_op_parallelism` and
    `--tensorflow_inter_op_parallelism`); None keeps the benchmark's own
    settings. `pools` sets them apart, `(intra, inter)`."""
    intra = threads or args.intra_op_threads or 0
    inter = threads or args.inter_op_threads or 0
    if pools is not None:
        intra, inter = pools
    graph = tf.Graph()
    session = tf.compat.v1.Session(
        graph=graph,
        config=tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=intra,
            inter_op_parallelism_threads=inter,
        ),
    )
    with graph.as_default():
        meta_graph = tf.compat.v1.saved_model.load(
            session, [tf.saved_model.SERVING], str(path)
        )
    signature = meta_graph.signature_def[SERVING_SIGNATURE]
    feeds = [
        graph.get_tensor_by_name(signature.inputs[name].name)
        for name in ("dense", "categorical")
    ]
    fetch = graph.get_tensor_by_name(signature.outputs["probability"].name)
    return session.make_callable(fetch, feeds)


def measure(paths, args):
    """Each path at batch 1 (latency) and 1024 (throughput), with the
    largest difference of its answers on the first 1024 rows from
    `serving_default`'s (the paths must compute the same model)."""
    results = []
    reference = None
    for name, (function, arrays) in paths.items():
        as_numpy = name in (KERAS, ONNX, *NUMPY_INPUTS)
        large = batches(
            arrays, THROUGHPUT_BATCH, args.throughput_calls, as_numpy
        )
        answer = np.reshape(np.asarray(function(*large[0])), [-1])
        if reference is None:
            reference = answer
        difference = float(np.max(np.abs(answer - reference)))
        inputs = batches(arrays, LATENCY_BATCH, args.calls, as_numpy)
        if name == XLA_SESSION_CONCURRENT:
            timed = [
                time_concurrent(function, inputs, args.warmup),
                time_concurrent(function, large, 2),
            ]
        else:
            timed = [time_calls(function, inputs, args.warmup)]
            time_calls(function, large[:2], 0)
            timed.append(time_calls(function, large, 0))
        for batch, times in zip((LATENCY_BATCH, THROUGHPUT_BATCH), timed):
            results.append(
                record(name, batch, *times[:2], difference, *times[2:])
            )
    return results


def record(signature, batch, seconds, cpu_seconds, difference, wall=None):
    """One row; `wall` is the wall time of concurrent calls (rows/s =
    all rows / wall), None for calls one after another."""
    ms = seconds * 1000.0
    wall = float(seconds.sum()) if wall is None else wall
    return {
        "signature": signature,
        "input": INPUTS[signature],
        "batch": batch,
        "calls": len(seconds),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "rows_per_s": round(batch * len(seconds) / wall, 1),
        "cpu_ms_per_call": round(1000.0 * cpu_seconds / len(seconds), 3),
        "max_abs_difference": difference,
    }


def _threads(count):
    return count or "default (all cores)"


def markdown(report):
    m = report["machine"]
    model = report["model"]
    settings = report["settings"]
    lines = _report.header_lines(
        "Serving latency: SavedModel, XLA, Keras and ONNX Runtime",
        report,
        machine_note="; TensorFlow intra-op threads: "
        f"{m['tf_intra_op_threads']}, inter-op threads: "
        f"{m['tf_inter_op_threads']}",
    ) + [
        f"- Model: {model['model']}"
        + (
            f", trained by the benchmark on {model['training_data']} (val AUC "
            f"{model['val_auc']})"
            if "training_data" in model
            else ""
        )
        + f"; {model['parameters']:,} parameters, vocabulary sizes sum "
        f"{model['vocabulary_sizes_sum']:,}.",
        "- SavedModel rows: loaded with plain `tf.saved_model.load`, one "
        "signature call per request on tensors made beforehand (the "
        "vocabulary lookups run in the graph); `(XLA)`: the `adrec export "
        "--xla` export. `(Session)` rows call the same signature as "
        "`tensorflow_model_server` does: the SavedModel loaded into a TF1 "
        "`Session` and one `Session.run` of the signature's named tensors "
        "per request, fed numpy arrays (their conversion to tensors is "
        "timed); `1 thread`: both of that session's thread pools set to 1 "
        "(`--tensorflow_intra_op_parallelism=1 "
        "--tensorflow_inter_op_parallelism=1`); `1 thread, N callers`: "
        "intra-op pool 1 and inter-op pool N, with N caller threads (one "
        "per core) sending requests at the same time, as clients keep a "
        "server busy: every caller sends all the calls, rows/s = all rows "
        "/ wall time, latencies over every call. "
        "Keras and ONNX Runtime rows take ids preprocessed "
        "beforehand (lookups not timed). Each call is timed with "
        "`time.perf_counter` until the result is a numpy array. Latency: "
        f"{settings['calls']} timed calls after {settings['warmup']} warmup "
        f"calls; throughput: {settings['throughput_calls']} calls of "
        f"{THROUGHPUT_BATCH} rows. Requests are held-out rows (unseen "
        "tokens go to the OOV id).",
        "- CPU ms/call: process CPU time (all threads) per call, less "
        "sensitive to other load than wall time; above the mean wall time "
        "when several threads work. Max abs diff: the largest difference "
        f"of the path's probabilities on the first {THROUGHPUT_BATCH} rows "
        f"from `{SERVING_SIGNATURE}`'s.",
        f"- Targets (issue 31), on `{SERVING_SIGNATURE}`: batch-1 p99 <= "
        f"{TARGET_P99_MS} ms, batch {THROUGHPUT_BATCH} >= "
        f"{TARGET_ROWS_PER_S:,} rows/s.",
        "- Not measured: the model server's own work (HTTP/gRPC, JSON or "
        "proto parsing, request batching).",
        "",
    ]
    columns = [
        ("path", "l"),
        ("input", "l"),
        ("batch", "r"),
        ("calls", "r"),
        ("p50 ms", "r"),
        ("p99 ms", "r"),
        ("mean ms", "r"),
        ("rows/s", "r"),
        ("CPU ms/call", "r"),
        ("max abs diff", "r"),
    ]
    rows = [
        [
            r["signature"],
            r["input"],
            r["batch"],
            r["calls"],
            f"{r['p50_ms']:.3f}",
            f"{r['p99_ms']:.3f}",
            f"{r['mean_ms']:.3f}",
            f"{r['rows_per_s']:,.0f}",
            f"{r['cpu_ms_per_call']:.3f}",
            f"{r['max_abs_difference']:.1e}",
        ]
        for r in report["results"]
    ]
    return lines + _report.markdown_table(columns, rows)


def model_facts(path):
    metadata_file = pathlib.Path(path) / "assets.extra" / "adrec_serving.json"
    metadata = {}
    if metadata_file.is_file():
        metadata = json.loads(metadata_file.read_text())
    reader = tf.train.load_checkpoint(
        str(pathlib.Path(path) / "variables" / "variables")
    )
    parameters = 0
    for name, shape in reader.get_variable_to_shape_map().items():
        if name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"):
            continue
        parameters += int(np.prod(shape))
    return {
        "parameters": parameters,
        "vocabulary_sizes_sum": int(
            sum(metadata.get("vocabulary_sizes") or [])
        ),
        "data_kind": metadata.get("data_kind", "criteo"),
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(
            args.intra_op_threads
        )
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(
            args.inter_op_threads
        )
    tune_malloc_for_training()  # see keras_adrec.utils.allocator
    command = _report.command_line(REPORT_NAME, argv)
    load_at_start = _report.load_average()
    start = time.perf_counter()
    _report.log(f"{command}\nload average at start: {load_at_start}")
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        path, info, model_dir = prepare_export(args, work)
        facts = model_facts(path)
        schema = adrec_data.schema_for(facts["data_kind"])
        dense, categorical = query_rows(args, work, schema)
        # Keep the measurement free of the training objects.
        gc.collect()
        keras.backend.clear_session()
        paths = serving_paths(
            path, model_dir, work, dense, categorical, schema, args
        )
        results = measure(paths, args)
    report = {
        "benchmark": REPORT_NAME,
        "command": command,
        "date": _report.utc_now(),
        "seconds": time.perf_counter() - start,
        "machine": _report.machine(
            load_at_start,
            tf_intra_op_threads=_threads(
                tf.config.threading.get_intra_op_parallelism_threads()
            ),
            tf_inter_op_threads=_threads(
                tf.config.threading.get_inter_op_parallelism_threads()
            ),
        ),
        "versions": _report.versions(*_serving_modules()),
        "model": dict(info, **facts),
        "settings": {
            "calls": args.calls,
            "warmup": args.warmup,
            "throughput_calls": args.throughput_calls,
            "smoke": args.smoke,
        },
        "results": results,
    }
    _report.write_report(args.output_dir, REPORT_NAME, report, markdown(report))
    return 0


def _serving_modules():
    """The ONNX packages, where installed, for the versions line."""
    modules = []
    for name in ("onnxruntime", "onnx", "tf2onnx"):
        try:
            modules.append(__import__(name))
        except ImportError:
            pass
    return modules


if __name__ == "__main__":
    sys.exit(main())
