"""How the event vectors of a sequential Ad-Rec model saturate as it trains.

For a preset, each `--variants` setting (`KEY=VALUE[;KEY=VALUE]`, or
`default`) and each seed: the Taobao points of
`benchmarks.sequential_paired` (the cut last user dropped), the preset's
model and optimizer, trained step by step on the seed's shuffled batches.
At each checkpoint step, on the first 1,024 validation points:

- `top_input`: mean |x| of the event-top MLP's input (the bottom vector
  and the interaction's output, eq. 8);
- `saturated`: the share of the event-top MLP's pre-sigmoids with
  |x| > 5 (a sigmoid there passes less than 0.7% of the gradient);
- `event_std`: the standard deviation over points of the event vectors,
  averaged over positions and units (0: every event maps to one vector).

Usage (from the repository root):
    python -m benchmarks.sequential_saturation --preset rm4 \
        --variants "norm_first=true" "norm_first=false" --seeds 10,11,12 \
        [--checkpoints 0,5,50,300,750]
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from benchmarks import report as _report  # noqa: E402
from benchmarks import sequential_paired  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="rm4")
    parser.add_argument("--variants", nargs="+", default=["default"])
    parser.add_argument("--seeds", default="10,11,12")
    parser.add_argument("--checkpoints", default="0,5,50,300,750")
    parser.add_argument("--output-dir", default=_report.RESULTS_DIR)
    parser.add_argument("--name", default="sequential_saturation")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    args.checkpoints = [int(s) for s in args.checkpoints.split(",") if s]
    return args


def _overrides(variant):
    from keras_adrec.cli.arguments import parse_set

    if variant == "default":
        return {}
    return parse_set([pair for pair in variant.split(";") if pair])


def probe(model, features):
    """`top_input`, `saturated` and `event_std` on `features`."""
    import numpy as np
    from keras import ops

    dense, sparse = model._unpack(features)
    flat_dense = ops.reshape(dense, (-1, dense.shape[-1]))
    bottom = model.bottom_stack(flat_dense)
    embeddings = model.embedding_layer(
        ops.reshape(sparse, (-1, sparse.shape[-1]))
    )
    tokens = ops.concatenate([ops.expand_dims(bottom, 1), embeddings], 1)
    top_input = ops.concatenate([bottom, model.interaction(tokens)], -1)
    x = top_input
    layers = model.event_top_stack.dense_layers
    for dense_layer in layers[:-1]:
        x = dense_layer(x)
    pre_sigmoid = ops.matmul(x, layers[-1].kernel) + layers[-1].bias
    events = ops.reshape(
        ops.sigmoid(pre_sigmoid), (-1, sparse.shape[1], layers[-1].units)
    )
    events = ops.convert_to_numpy(events)
    return {
        "top_input": float(np.mean(np.abs(ops.convert_to_numpy(top_input)))),
        "saturated": float(
            np.mean(np.abs(ops.convert_to_numpy(pre_sigmoid)) > 5.0)
        ),
        "event_std": float(np.mean(np.std(events, axis=0))),
    }


def run(split, preset, overrides, seed, checkpoints):
    import keras

    from keras_adrec.models import get_preset
    from keras_adrec.training import build_sequential_model

    fields = get_preset(preset, **{"interaction": "adrec", **overrides})
    keras.utils.set_random_seed(seed)
    model = build_sequential_model(fields, split.vocabulary.vocabulary_sizes)
    probe_points = {
        key: value[:1024] for key, value in split.validation.features.items()
    }
    model(probe_points)  # builds every part before the first probe
    batches = iter(
        split.train.to_dataset(fields.batch_size, shuffle=True, seed=seed)
    )
    found = {}
    step = 0
    for checkpoint in sorted(checkpoints):
        while step < checkpoint:
            features, labels = next(batches)
            model.train_on_batch(features, labels)
            step += 1
        found[checkpoint] = probe(model, probe_points)
    return found


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    events, note = sequential_paired.load_events("taobao")
    rows = []
    results = []
    for seed in args.seeds:
        split = sequential_paired.prepare(events, seed, 20)
        for variant in args.variants:
            found = run(
                split, args.preset, _overrides(variant), seed, args.checkpoints
            )
            results.append({"variant": variant, "seed": seed, "probe": found})
            for step, values in found.items():
                rows.append(
                    [variant, seed, step]
                    + [
                        f"{values[k]:.3f}"
                        for k in ("top_input", "saturated", "event_std")
                    ]
                )
            _report.log(f"{variant} seed {seed}: {json.dumps(found)}")
    lines = [
        f"# Event-vector saturation, {args.preset} Ad-Rec (Taobao)",
        "",
        "- Command: `"
        + _report.command_line("sequential_saturation", argv)
        + "`",
        f"- Data: {note}; probe on the first 1,024 validation points.",
        "",
    ] + _report.markdown_table(
        [
            ("variant", "l"),
            ("seed", "r"),
            ("step", "r"),
            ("mean abs event-top input", "r"),
            ("pre-sigmoids abs > 5", "r"),
            ("event std over points", "r"),
        ],
        rows,
    )
    report = {"command": lines[2], "note": note, "results": results}
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, f"{args.name}.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(args.output_dir, f"{args.name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
