"""Validation AUC of the sequential models RM4-RM7 x every interaction.

On the Taobao sample (`taobao/UserBehavior_head84k.csv` under
`ADREC_DATA_DIR`), for each preset (rm4 tsl, rm5 mha, rm6 rnn, rm7
transformer), each per-event interaction (dot, fm, autoint, dcnv2, adrec)
and each seed: `keras_adrec.data.prepare_taobao` with the seed (all its
defaults: 20 history events, one random negative per positive, the 70%
time cut), the model from `keras_adrec.training.build_sequential_model`
(the preset's optimizer, `keras_adrec.training.optimizer_for`) and the
preset's epochs, batch size and learning rate (the documented budget of
`keras_adrec.models.sequential_presets`). The validation AUC is measured
after every epoch, so the report also shows the curve the budget was
chosen on. Results are written after every run (a partial report
survives an interruption).

Usage (from the repository root):
    python -m benchmarks.sequential_quality [--presets rm4,rm5] \
        [--interactions dot,adrec] [--seeds 0,1,2] [--epochs N] \
        [--learning-rate LR] [--warmup-steps W]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from benchmarks import report as _report  # noqa: E402
from keras_adrec.utils import mean_std  # noqa: E402
from keras_adrec.utils import tune_malloc_for_training  # noqa: E402

PRESETS = ("rm4", "rm5", "rm6", "rm7")
INTERACTIONS = ("dot", "fm", "autoint", "dcnv2", "adrec")
SAMPLE = "taobao/UserBehavior_head84k.csv"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--interactions", default=",".join(INTERACTIONS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: the preset's"
    )
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help="learning-rate warm-up steps (default: the preset's)",
    )
    parser.add_argument("--max-points-per-user", type=int, default=None)
    parser.add_argument("--data", default=None, help="default: the sample")
    parser.add_argument("--output-dir", default=_report.RESULTS_DIR)
    parser.add_argument("--name", default="sequential_quality")
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="JSON",
        help="write one report from these reports' runs (runs done in "
        "parallel processes) instead of training",
    )
    args = parser.parse_args(argv)
    args.presets = [p for p in args.presets.split(",") if p]
    args.interactions = [i for i in args.interactions.split(",") if i]
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    return args


def run_one(split, preset, interaction, seed, args):
    """Train one model; return its per-epoch validation AUC and logloss."""
    import keras

    from keras_adrec.models import get_preset
    from keras_adrec.training import build_sequential_model
    from keras_adrec.training.metrics import evaluate_model

    overrides = {"interaction": interaction}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.learning_rate is not None:
        overrides["learning_rate"] = args.learning_rate
    if args.warmup_steps is not None:
        overrides["learning_rate_warmup_steps"] = args.warmup_steps
    fields = get_preset(preset, **overrides)
    keras.utils.set_random_seed(seed)
    model = build_sequential_model(fields, split.vocabulary.vocabulary_sizes)
    train = split.train.to_dataset(fields.batch_size, shuffle=True, seed=seed)
    val = split.validation.to_dataset(4096)
    curve = []
    start = time.perf_counter()
    for _ in range(fields.epochs):
        model.fit(train, epochs=1, verbose=0, shuffle=False)
        metrics = evaluate_model(model, val)
        curve.append(
            {"auc": float(metrics["auc"]), "logloss": float(metrics["logloss"])}
        )
    return {
        "preset": preset,
        "interaction": interaction,
        "seed": seed,
        "epochs": fields.epochs,
        "learning_rate": fields.learning_rate,
        "optimizer": fields.optimizer,
        "optimizer_config": fields.optimizer_config,
        "learning_rate_warmup_steps": fields.learning_rate_warmup_steps,
        "batch_size": fields.batch_size,
        "curve": curve,
        "val_auc": curve[-1]["auc"],
        "val_logloss": curve[-1]["logloss"],
        "seconds": time.perf_counter() - start,
    }


def cell(runs, key="val_auc"):
    mean, std = mean_std([run[key] for run in runs])
    if mean is None:
        return "–"
    if std is None:
        return f"{mean:.4f} (n=1)"
    return f"{mean:.4f} ± {std:.4f}"


def markdown(report):
    runs = report["runs"]
    seeds = report["seeds"]
    lines = _report.header_lines(
        "Sequential models (RM4-RM7) on the Taobao sample", report
    )
    lines += [
        f"- Data: `{SAMPLE}`, `prepare_taobao` defaults "
        f"(max_points_per_user={report['max_points_per_user']}); "
        f"{report['train_points']} training and {report['val_points']} "
        "validation points (seed 0).",
        f"- Budget: {report['budget']}.",
        "",
        "## Validation AUC, mean ± sample std (ddof=1) over "
        f"{len(seeds)} seeds ({', '.join(map(str, seeds))})",
        "",
    ]
    interactions = report["interactions"]
    rows = []
    for preset in report["presets"]:
        row = [preset]
        for interaction in interactions:
            chosen = [
                r
                for r in runs
                if r["preset"] == preset and r["interaction"] == interaction
            ]
            row.append(cell(chosen) if chosen else "–")
        rows.append(row)
    lines += _report.markdown_table(
        [("preset", "l")] + [(i, "r") for i in interactions], rows
    )
    lines += [
        "",
        "## Validation AUC after each epoch (mean over seeds)",
        "",
    ]
    curve_rows = []
    for preset in report["presets"]:
        for interaction in interactions:
            chosen = [
                r
                for r in runs
                if r["preset"] == preset and r["interaction"] == interaction
            ]
            if not chosen:
                continue
            epochs = min(len(r["curve"]) for r in chosen)
            means = [
                np.mean([r["curve"][e]["auc"] for r in chosen])
                for e in range(epochs)
            ]
            curve_rows.append(
                [preset, interaction, len(chosen)]
                + [", ".join(f"{m:.4f}" for m in means)]
            )
    lines += _report.markdown_table(
        [
            ("preset", "l"),
            ("interaction", "l"),
            ("seeds", "r"),
            ("AUC per epoch", "l"),
        ],
        curve_rows,
    )
    return lines


def merge(paths, args, argv):
    """One report from the runs of several reports of the same budget."""
    import json

    parts = []
    for path in paths:
        with open(path) as f:
            parts.append(json.load(f))
    first = parts[0]
    for key in ("budget", "train_points", "val_points", "max_points_per_user"):
        values = {json.dumps(part[key]) for part in parts}
        if len(values) > 1:
            raise SystemExit(f"Cannot merge: the reports differ in {key}.")
    runs = [run for part in parts for run in part["runs"]]

    report = dict(first)
    report.update(
        {
            "command": _report.command_line("sequential_quality", argv),
            "merged_commands": [part["command"] for part in parts],
            "presets": [
                p for p in PRESETS if any(r["preset"] == p for r in runs)
            ],
            "interactions": [
                i
                for i in INTERACTIONS
                if any(r["interaction"] == i for r in runs)
            ],
            "seeds": sorted({r["seed"] for r in runs}),
            "runs": runs,
            "seconds": sum(part["seconds"] for part in parts),
            "machine": {
                **first["machine"],
                "load_average_at_end": parts[-1]["machine"][
                    "load_average_at_end"
                ],
            },
        }
    )
    lines = markdown(report)
    lines.insert(
        3,
        "- Merged from the runs of: "
        + "; ".join(f"`{c}`" for c in report["merged_commands"])
        + " (run side by side; total is the sum of their times).",
    )
    _report.write_report(args.output_dir, args.name, report, lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    tune_malloc_for_training()  # see keras_adrec.utils.allocator
    if args.merge:
        merge(args.merge, args, argv)
        return
    from keras_adrec import data as adrec_data

    path = args.data or _report.shared_data_file(SAMPLE)
    if path is None:
        raise SystemExit(f"{SAMPLE} not found; set ADREC_DATA_DIR.")
    load_at_start = _report.load_average()
    start = time.perf_counter()
    preparation = {}
    if args.max_points_per_user is not None:
        preparation["max_points_per_user"] = args.max_points_per_user
    splits = {
        seed: adrec_data.prepare_taobao(str(path), seed=seed, **preparation)
        for seed in args.seeds
    }
    from keras_adrec.models.presets import get_preset

    fields = get_preset(args.presets[0])
    warmup = (
        fields.learning_rate_warmup_steps
        if args.warmup_steps is None
        else args.warmup_steps
    )
    report = {
        "command": _report.command_line("sequential_quality", argv),
        "date": _report.utc_now(),
        "versions": _report.versions(),
        "presets": args.presets,
        "interactions": args.interactions,
        "seeds": args.seeds,
        "max_points_per_user": args.max_points_per_user,
        "train_points": len(splits[args.seeds[0]].train),
        "val_points": len(splits[args.seeds[0]].validation),
        "budget": (
            f"{args.epochs or fields.epochs} epochs, "
            f"{fields.optimizer} lr "
            f"{args.learning_rate or fields.learning_rate} "
            f"{fields.optimizer_config}, linear warm-up over "
            f"{warmup} steps, batch {fields.batch_size}"
        ),
        "runs": [],
    }
    for preset in args.presets:
        for interaction in args.interactions:
            for seed in args.seeds:
                run = run_one(splits[seed], preset, interaction, seed, args)
                print(
                    f"{preset} {interaction} seed {seed}: AUC per epoch "
                    + ", ".join(f"{c['auc']:.4f}" for c in run["curve"]),
                    flush=True,
                )
                report["runs"].append(run)
                report["seconds"] = time.perf_counter() - start
                report["machine"] = _report.machine(load_at_start)
                _report.write_report(
                    args.output_dir, args.name, report, markdown(report)
                )


if __name__ == "__main__":
    main()
