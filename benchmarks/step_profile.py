"""Where an RM1 training step spends its time, op by op, graph and XLA.

Profiles the training step of RM1 models (SYNTHETIC inputs, the models of
`benchmarks.rm1_models`) under TensorFlow's profiler
(`tf.profiler.experimental`) and sums, per step, the time of every op
executed in the traced steps:

- graph mode (`jit_compile=False`): every TensorFlow op, named by its
  op name (name scope) and op type;
- XLA (`jit_compile=True`): every operation of the compiled executable
  (a fusion, a dot, a copy), named by its HLO instruction; the TensorFlow
  op it came from is read from the instruction's metadata in the
  optimized HLO of the same function (`experimental_get_compiler_ir`).

The step is the model's own `train_step` (forward, loss, backward, SGD
update) in a `tf.function` with the model's `jit_compile`, as `model.fit`
runs it; the input pipeline is outside it. Ops are grouped by the part of
the model they belong to (read from the op name, forward and gradient
alike), and the largest ops are listed with their share. For the Ad-Rec
interaction the block is split into:

- `attention projections`: the query, key, value and output matmuls
  (with the head layout's transposes);
- `scores, mask, softmax, weights x V`: everything else in the attention
  layer (score and combine batched matmuls, head transposes, the keep
  mask, the softmax);
- `FFN`: the two Dense layers on the `(B * 27, 16)` tokens;
- `layer norms`;
- `dropout, residuals`: the rest of the block.

An op's time is its duration on the thread that ran it; ops that run at
the same time on different threads both count, and an op's own parallel
work is inside its duration. So op ms per step is not wall time: the
shares are what to read. The profiler adds some overhead per op (more to
graph mode's many small ops than to XLA's few fused ones).

Usage (from the repository root):
    python -m benchmarks.step_profile
    python -m benchmarks.step_profile --interactions adrec --modes graph \\
        --batch-size 128 --steps 10 --output-dir /tmp/profile

Writes `step_profile.md` and `step_profile.json` to `--output-dir`
(default `benchmarks/results`) with the command, machine, load average,
versions and date. `benchmarks.training_throughput` calls `breakdown` and
puts its tables in its report. Also measures the fp32 matmul peak used
there.
"""

import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import report as _report  # noqa: E402
from benchmarks import rm1_models  # noqa: E402
from keras_adrec.models import get_preset  # noqa: E402
from keras_adrec.utils import tune_malloc_for_training  # noqa: E402

REPORT_NAME = "step_profile"
DEFAULT_INTERACTIONS = ("dot", "dcnv2", "adrec")
MODES = {"graph": False, "xla": True}

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
OTHER = "other (loss, metrics, unattributed)"

# An HLO instruction of the optimized module: its name, its opcode (for a
# fusion, its kind) and its metadata.
_HLO_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?(?P<name>[\w.\-]+)\s*=\s")
_HLO_OPCODE = re.compile(r"\s(?P<opcode>[a-z][\w\-]*)\(")


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


def short_name(op_name):
    """An op name without the call wrappers TensorFlow puts in front."""
    while op_name.startswith("StatefulPartitionedCall/"):
        op_name = op_name[len("StatefulPartitionedCall/") :]
    return op_name


def hlo_instructions(hlo_text):
    """`{instruction name: (op type, TensorFlow op name)}` of an HLO module.

    The op type is the metadata's `op_type` (the TensorFlow op) and the
    opcode (for a fusion, its kind) after a slash; the op name is the
    metadata's `op_name`, empty where the instruction has none.
    """
    found = {}
    for line in hlo_text.splitlines():
        match = _HLO_INSTRUCTION.match(line)
        opcode = _HLO_OPCODE.search(line, match.end() - 1) if match else None
        if not opcode:
            continue
        opcode = opcode.group("opcode")
        kind = re.search(r"kind=(k\w+)", line)
        if opcode == "fusion" and kind:
            opcode = f"fusion {kind.group(1)}"
        op_type = re.search(r'op_type="([^"]*)"', line)
        op_name = re.search(r'op_name="([^"]*)"', line)
        found.setdefault(
            match.group("name"),
            (
                (op_type.group(1) + "/" if op_type else "") + opcode,
                op_name.group(1) if op_name else "",
            ),
        )
    return found


def _load_space(logdir):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise RuntimeError(f"the profiler wrote no trace under {logdir}")
    space = xplane_pb2.XSpace()
    with open(paths[0], "rb") as f:
        space.ParseFromString(f.read())
    return space


def _events(space):
    """`(event name, milliseconds)` of every event on every host line."""
    for plane in space.planes:
        names = {key: m.name for key, m in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                yield names.get(event.metadata_id, ""), event.duration_ps / 1e9


def graph_op_events(space):
    """`(op name, op type, ms)` of every TensorFlow op in a graph trace."""
    for name, ms in _events(space):
        # TensorFlow op events are named "op_name:OpType".
        if ":" not in name or name.startswith("Iterator"):
            continue
        op_name, op_type = name.rsplit(":", 1)
        if "/" not in op_name or " " in op_type:
            continue
        yield short_name(op_name), op_type, ms


def xla_op_events(space, instructions):
    """`(op name, op type, ms)` of every XLA operation in a trace.

    Args:
        space: the profiler's `XSpace`.
        instructions: `hlo_instructions` of the executable's optimized HLO.

    The op name is the TensorFlow op the instruction came from, with the
    instruction's name in brackets.
    """
    for name, ms in _events(space):
        if name not in instructions:
            continue
        op_type, op_name = instructions[name]
        label = f"{short_name(op_name)} [{name}]" if op_name else f"[{name}]"
        yield label, op_type, ms


def breakdown(model, dataset, steps=20, warmup_steps=5, jit=None):
    """Op milliseconds per training step, by part, op type and op.

    Args:
        model: a compiled Keras model (TensorFlow backend).
        dataset: a repeated `tf.data.Dataset` of `(features, labels)`.
        steps: int, profiled steps.
        warmup_steps: int, steps run before profiling (tracing, XLA
            compilation).
        jit: bool or None. Compile the step with XLA; `None` takes the
            model's `jit_compile`.

    Returns:
        A dict: `mode` ("graph" or "xla"), `steps`, `total_ms` (op ms per
        step), `parts` (a list of `{"part", "ms", "share", "op_types":
        [(type, ms), ...]}`, largest first, op types largest first) and
        `ops` (a list of `{"op", "type", "part", "ms", "share"}`, largest
        first).
    """
    jit = bool(model.jit_compile) if jit is None else bool(jit)
    step = tf.function(model.train_step, jit_compile=jit)
    batches = iter(dataset)
    for _ in range(max(1, warmup_steps)):
        step(next(batches))
    instructions = None
    if jit:
        batch = next(batches)
        instructions = hlo_instructions(
            step.experimental_get_compiler_ir(batch)(stage="optimized_hlo")
        )
    inputs = [next(batches) for _ in range(steps)]
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for batch in inputs:
                outputs = step(batch)
            keras.tree.map_structure(np.asarray, outputs)
        finally:
            tf.profiler.experimental.stop()
        space = _load_space(logdir)
    if jit:
        events = list(xla_op_events(space, instructions))
    else:
        events = list(graph_op_events(space))
    if not events:
        raise RuntimeError("the trace holds no op of the training step")
    return summarise(events, steps, "xla" if jit else "graph")


def summarise(events, steps, mode):
    """The dict of `breakdown` from `(op name, op type, ms)` events."""
    by_part = collections.defaultdict(collections.Counter)
    by_op = collections.Counter()
    op_types = {}
    for op_name, op_type, ms in events:
        by_part[part_of(op_name)][op_type] += ms / steps
        by_op[op_name] += ms / steps
        op_types[op_name] = op_type
    total = sum(by_op.values())
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
    ops = [
        {
            "op": op_name,
            "type": op_types[op_name],
            "part": part_of(op_name),
            "ms": ms,
            "share": ms / total if total else 0.0,
        }
        for op_name, ms in by_op.most_common()
    ]
    return {
        "mode": mode,
        "steps": steps,
        "total_ms": total,
        "parts": parts,
        "ops": ops,
    }


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


def top_op_rows(result, count=10):
    """Table rows of the `count` largest ops: op, type, part, ms, share."""
    return [
        [
            f"`{op['op']}`",
            op["type"],
            op["part"],
            f"{op['ms']:.2f}",
            f"{100 * op['share']:.1f}%",
        ]
        for op in result["ops"][:count]
    ]


def part_comparison_rows(profiles, mode):
    """Rows: part, then op ms/step of each interaction profiled in `mode`.

    With `adrec` and another interaction, a last column per other one
    gives Ad-Rec's excess (its ms minus the other's).
    """
    chosen = [p for p in profiles if p["mode"] == mode]
    names = [p["interaction"] for p in chosen]
    ms = {
        p["interaction"]: {part["part"]: part["ms"] for part in p["parts"]}
        for p in chosen
    }
    parts = [name for name, _ in MODEL_PARTS] + [OTHER]
    parts = [part for part in parts if any(part in ms[n] for n in names)]
    others = [n for n in names if n != "adrec"] if "adrec" in names else []
    rows = []
    for part in parts + ["total"]:
        values = {
            n: (
                sum(ms[n].values()) if part == "total" else ms[n].get(part, 0.0)
            )
            for n in names
        }
        row = [part] + [f"{values[n]:.1f}" for n in names]
        row += [f"{values['adrec'] - values[n]:+.1f}" for n in others]
        rows.append(row)
    columns = [("part", "l")] + [(n, "r") for n in names]
    columns += [(f"adrec − {n}", "r") for n in others]
    return columns, rows


def markdown(report):
    s = report["settings"]
    lines = _report.header_lines(
        "Where an RM1 training step spends its time (SYNTHETIC inputs)",
        report,
    ) + [
        f"- Step: the RM1 model's `train_step` (forward, loss, backward, "
        f"SGD update) at batch {s['batch_size']}, in a `tf.function` "
        "without (graph) and with XLA (`jit_compile=True`), as `model.fit` "
        f"runs it; {s['warmup_steps']} steps before profiling, then "
        f"{s['steps']} steps traced by `tf.profiler.experimental`.",
        "- Op time: each op's duration on the thread that ran it, summed "
        "per step. Graph mode lists TensorFlow ops (op name and type); XLA "
        "lists the compiled executable's operations (HLO instruction in "
        "brackets), named by the TensorFlow op in their metadata. Ops that "
        "run at the same time both count, so op ms is not wall time: read "
        "the shares. The profiler adds overhead per op, more to graph "
        "mode's many small ops.",
        "- Parts: read from each op's name scope, forward and gradient "
        "alike (see `benchmarks/step_profile.py`).",
    ]
    for mode in s["modes"]:
        columns, rows = part_comparison_rows(report["profiles"], mode)
        lines += [
            "",
            f"## Op ms per step by model part, {mode}",
            "",
        ]
        lines += _report.markdown_table(columns, rows)
    for entry in report["profiles"]:
        lines += [
            "",
            f"## {entry['interaction']}, {entry['mode']}: the ten largest "
            f"ops ({entry['total_ms']:.1f} op ms per step in all)",
            "",
        ]
        lines += _report.markdown_table(
            [
                ("op", "l"),
                ("type", "l"),
                ("part", "l"),
                ("ms/step", "r"),
                ("share", "r"),
            ],
            top_op_rows(entry),
        )
        lines += ["", "By part, with the largest op types (ms):", ""]
        lines += _report.markdown_table(
            [
                ("part", "l"),
                ("op ms/step", "r"),
                ("share", "r"),
                ("largest op types", "l"),
            ],
            markdown_rows(entry),
        )
    return lines


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--interactions",
        default=",".join(DEFAULT_INTERACTIONS),
        help="comma-separated interaction names "
        f"(default {','.join(DEFAULT_INTERACTIONS)})",
    )
    p.add_argument(
        "--modes",
        default="graph,xla",
        help="comma-separated, from graph, xla (default both)",
    )
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=20, help="profiled steps")
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=5,
        help="steps before profiling (tracing, XLA compilation)",
    )
    p.add_argument("--output-dir", default=_report.RESULTS_DIR)
    args = p.parse_args(argv)
    args.interactions = [
        i.strip() for i in args.interactions.split(",") if i.strip()
    ]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown or not args.modes:
        p.error(f"--modes: unknown {unknown}; from {', '.join(MODES)}")
    if not args.interactions:
        p.error("--interactions names none")
    if min(args.batch_size, args.steps, args.warmup_steps) < 1:
        p.error("--batch-size, --steps and --warmup-steps must be >= 1")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    tune_malloc_for_training()  # see keras_adrec.utils.allocator
    command = _report.command_line(REPORT_NAME, argv)
    load_at_start = _report.load_average()
    start = time.perf_counter()
    _report.log(f"{command}\nload average at start: {load_at_start}")
    fields = get_preset("rm1")
    features, labels, vocabulary_sizes, _ = rm1_models.synthetic_inputs(
        args.batch_size * 8
    )
    profiles = []
    for mode in args.modes:
        for name in args.interactions:
            keras.utils.set_random_seed(0)
            # The model and pipeline `benchmarks.training_throughput` times.
            model = rm1_models.make_model(
                name,
                fields,
                vocabulary_sizes,
                features["dense"].shape[1],
                jit=MODES[mode],
            )
            dataset = rm1_models.training_dataset(
                features, labels, args.batch_size
            )
            result = breakdown(
                model,
                dataset,
                steps=args.steps,
                warmup_steps=args.warmup_steps,
            )
            profiles.append({"interaction": name, **result})
            _report.log(
                f"  {mode:5s} {name:15s} {result['total_ms']:8.1f} op ms "
                "per step"
            )
    report = {
        "benchmark": REPORT_NAME,
        "command": command,
        "date": _report.utc_now(),
        "seconds": time.perf_counter() - start,
        "machine": _report.machine(load_at_start),
        "versions": _report.versions(),
        "synthetic": True,
        "settings": {
            "preset": "rm1",
            "interactions": args.interactions,
            "modes": args.modes,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "warmup_steps": args.warmup_steps,
        },
        "profiles": profiles,
    }
    _report.write_report(args.output_dir, REPORT_NAME, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
