"""Where an RM1 training step spends its time, by model part and op type.

Runs `model.fit` on an RM1 model (SYNTHETIC inputs) in graph mode under
TensorFlow's profiler (`tf.profiler.experimental`) and sums the time of
every TensorFlow op executed in the traced steps, grouped by the part of
the model it belongs to (read from the op's name scope, forward and
gradient alike) and by op type. For the Ad-Rec interaction the block is
split into:

- `attention projections`: the query, key, value and output matmuls
  (with the head layout's transposes);
- `scores, mask, softmax, weights x V`: everything else in the attention
  layer (score and combine batched matmuls, head transposes, the first
  softmax, the keep mask, the renormalisation);
- `FFN`: the two Dense layers on the `(B * 27, 16)` tokens;
- `layer norms`;
- `dropout, residuals`: the rest of the block.

Op time is summed over the threads that ran the ops, so a part's
milliseconds are CPU time spent in its ops (both cores together), not wall
time; the shares are what to read. The profiler adds some overhead per op.
XLA steps run as one compiled executable and are not split here.

Usage (from the repository root):
    python -m benchmarks.step_profile --interaction adrec --batch-size 1024

`benchmarks.training_throughput` calls `breakdown` and puts the table in
its report; both build their models from `benchmarks.rm1_models`. Also
measures the fp32 matmul peak used there.
"""

import argparse
import collections
import glob
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import rm1_models  # noqa: E402
from keras_adrec.models import get_preset  # noqa: E402
from keras_adrec.utils import tune_malloc_for_training  # noqa: E402

# (part, substrings of the op name; the first part that matches wins).
BLOCK_PARTS = (
    (
        "block: attention projections",
        (
            "qkv_projection",
            "output_projection",
            "attention_1/query",
            "attention_1/key",
            "attention_1/value",
            "attention_1/attention_output",
        ),
    ),
    ("block: scores, mask, softmax, weights x V", ("attention_1/",)),
    ("block: FFN", ("ffn_intermediate", "ffn_output")),
    ("block: layer norms", ("attention_norm", "ffn_norm")),
    ("block: dropout, residuals", ("block_",)),
)
MODEL_PARTS = BLOCK_PARTS + (
    ("embedding lookup", ("embedding",)),
    ("bottom MLP", ("bottom_mlp",)),
    ("top MLP", ("top_mlp",)),
    ("interaction (other)", ("interaction",)),
    ("optimizer update", ("sgd", "SGD", "adagrad", "Adagrad", "adam")),
)
OTHER = "other (loss, metrics, input)"


def matmul_peak_gflops(size=1024, repeats=5):
    """Best fp32 GFLOP/s of a `size`-square matmul (2 size^3 FLOP)."""
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def part_of(op_name):
    """The model part an op belongs to, from its name scope."""
    for part, needles in MODEL_PARTS:
        if any(needle in op_name for needle in needles):
            return part
    return OTHER


def _op_events(logdir):
    """`(op name, op type, milliseconds)` of every TensorFlow op traced."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise RuntimeError(f"the profiler wrote no trace under {logdir}")
    space = xplane_pb2.XSpace()
    with open(paths[0], "rb") as f:
        space.ParseFromString(f.read())
    for plane in space.planes:
        names = {key: m.name for key, m in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                # TensorFlow op events are named "op_name:OpType".
                if ":" not in name or name.startswith("Iterator"):
                    continue
                op_name, op_type = name.rsplit(":", 1)
                if "/" not in op_name:
                    continue
                yield op_name, op_type, event.duration_ps / 1e9


def breakdown(model, dataset, steps=20, warmup_steps=5):
    """Op milliseconds per step of `model.fit`, by part and op type.

    Args:
        model: a compiled Keras model (graph mode: `jit_compile=False`).
        dataset: a repeated `tf.data.Dataset` of `(features, labels)`.
        steps: int, profiled steps.
        warmup_steps: int, steps run before profiling (tracing).

    Returns:
        A dict: `steps`, `total_ms` (op ms per step), `parts` (a list of
        `{"part", "ms", "share", "op_types": [(type, ms), ...]}`, largest
        first, op types largest first).
    """
    model.fit(dataset, epochs=1, steps_per_epoch=warmup_steps, verbose=0)
    by_part = collections.defaultdict(collections.Counter)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
        finally:
            tf.profiler.experimental.stop()
        for op_name, op_type, ms in _op_events(logdir):
            by_part[part_of(op_name)][op_type] += ms / steps
    total = sum(sum(c.values()) for c in by_part.values())
    parts = []
    for part, counter in by_part.items():
        ms = sum(counter.values())
        parts.append(
            {
                "part": part,
                "ms": ms,
                "share": ms / total if total else 0.0,
                "op_types": counter.most_common(),
            }
        )
    parts.sort(key=lambda p: -p["ms"])
    return {"steps": steps, "total_ms": total, "parts": parts}


def markdown_rows(result, top_types=4):
    """Table rows: part, op ms/step, share, its largest op types."""
    rows = []
    for part in result["parts"]:
        types = ", ".join(
            f"{name} {ms:.1f}" for name, ms in part["op_types"][:top_types]
        )
        rows.append(
            [
                part["part"],
                f"{part['ms']:.1f}",
                f"{100 * part['share']:.1f}%",
                types,
            ]
        )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--interaction", default="adrec")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    tune_malloc_for_training()  # see keras_adrec.utils.allocator
    fields = get_preset("rm1")
    features, labels, vocabulary_sizes, _ = rm1_models.synthetic_inputs(
        args.batch_size * 8
    )
    keras.utils.set_random_seed(0)
    # The model and pipeline `benchmarks.training_throughput` times.
    model = rm1_models.make_model(
        args.interaction,
        fields,
        vocabulary_sizes,
        features["dense"].shape[1],
        jit=False,
    )
    dataset = rm1_models.training_dataset(features, labels, args.batch_size)
    result = breakdown(model, dataset, steps=args.steps)
    print(f"op ms per step (all threads): {result['total_ms']:.1f}")
    for row in markdown_rows(result):
        print(" | ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
