"""Steps and training time to a target AUC per interaction (paper Fig. 2-3).

Every interaction trains the RM1 model on SYNTHETIC covariate-shift data
(`SyntheticCriteo`: `--days` days of `--rows-per-day` rows; days 0 to
days-2 train, in order, one epoch at most; the first `--val-rows` rows of
the last day are the fixed validation set). Every `--eval-every` steps the
model predicts the validation set (exact AUC); a run stops when it reaches
the target AUC. The report gives, per interaction, the steps and the
training seconds (training steps only; the clock pauses while evaluating)
to the target, and how much faster Ad-Rec got there.

Target AUC: `--target-auc`, or from a pilot. The pilot is the first
`--pilot-steps` steps (default: half an epoch) of every interaction's seed-0
run, evaluated along the way; the target is `--target-fraction` (0.99) of
the best validation AUC any interaction reached at the end of its pilot.
The seed-0 runs then continue from where their pilot stopped (a run whose
pilot curve already crossed the target stops there: its steps to target are
read off that curve), so the pilot costs nothing extra. Seeds 1.. run from
scratch with the target. (A short pilot with 0.98 was tried first: on this
data every interaction then crossed the target within the first few
evaluations, too early to tell them apart.)

Batch and learning rate: batch 1024 (`--batch-size`) so that a 2-million-row
epoch fits a short run on 2 cores; the RM1 preset's SGD learning rate 0.1
(set for batch 128) is scaled by sqrt(batch / 128) to 0.283 at batch 1024
(`--learning-rate` overrides). Linear scaling (0.8) made Ad-Rec diverge in
a probe (NaN loss).

Usage (from the repository root):
    python -m benchmarks.convergence
    python -m benchmarks.convergence --target-auc 0.70 --seeds 3
    python -m benchmarks.convergence --smoke --output-dir /tmp/bench

Writes `convergence.md`, `convergence.json` and `convergence.png` to
`--output-dir` (default `benchmarks/results`) with the command, machine,
versions and date.
"""

import argparse
import csv
import dataclasses
import math
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from benchmarks import report as _report  # noqa: E402
from keras_adrec.jobs.compare import BASE_VARIANTS  # noqa: E402
from keras_adrec.jobs.compare import VARIANTS  # noqa: E402
from keras_adrec.jobs.compare import load_comparison_data  # noqa: E402
from keras_adrec.jobs.compare import variant_fields  # noqa: E402
from keras_adrec.utils import mean_std  # noqa: E402
from keras_adrec.utils import tune_malloc_for_training  # noqa: E402

REPORT_NAME = "convergence"
PRESET = "rm1"
PRESET_BATCH = 128
PRESET_LEARNING_RATE = 0.1


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--interactions",
        default=None,
        help=f"comma-separated, from {', '.join(VARIANTS)} "
        f"(default: {', '.join(BASE_VARIANTS)})",
    )
    p.add_argument("--rows-per-day", type=int, default=None, help="350000")
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--shift-strength", type=float, default=1.0)
    p.add_argument(
        "--val-rows",
        type=int,
        default=None,
        help="validation rows from the last day (default 50000)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="1024")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="default 0.1 * sqrt(batch / 128)",
    )
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=None, help="100")
    p.add_argument("--target-auc", type=float, default=None)
    p.add_argument("--target-fraction", type=float, default=0.99)
    p.add_argument(
        "--pilot-steps",
        type=int,
        default=None,
        help="steps of the pilot, a multiple of --eval-every (default: "
        "half an epoch, rounded down to one)",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="stop a run here if it has not reached the target "
        "(default: one epoch)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny run for tests: dot and adrec, 7 days of 300 rows, batch 128",
    )
    p.add_argument("--output-dir", default=_report.RESULTS_DIR)
    args = p.parse_args(argv)
    if args.smoke:
        defaults = {
            "interactions": "dot,adrec",
            "rows_per_day": 300,
            "val_rows": 300,
            "batch_size": 128,
            "eval_every": 3,
        }
    else:
        defaults = {
            "interactions": ",".join(BASE_VARIANTS),
            "rows_per_day": 350_000,
            "val_rows": 50_000,
            "batch_size": 1024,
            "eval_every": 50,
        }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.learning_rate is None:
        args.learning_rate = PRESET_LEARNING_RATE * math.sqrt(
            args.batch_size / PRESET_BATCH
        )
    args.interactions = [
        i.strip() for i in args.interactions.split(",") if i.strip()
    ]
    unknown = [i for i in args.interactions if i not in VARIANTS]
    if unknown:
        p.error(f"unknown interaction(s) {unknown}; from {list(VARIANTS)}")
    if args.days < 2:
        p.error("--days must be at least 2")
    if min(args.rows_per_day, args.val_rows, args.batch_size) < 1:
        p.error("--rows-per-day, --val-rows and --batch-size must be >= 1")
    if args.seeds < 1 or args.eval_every < 1:
        p.error("--seeds and --eval-every must be >= 1")
    if args.pilot_steps is not None and (
        args.pilot_steps < 1 or args.pilot_steps % args.eval_every
    ):
        p.error("--pilot-steps must be a positive multiple of --eval-every")
    if args.target_auc is not None and not 0.5 < args.target_auc <= 1.0:
        p.error("--target-auc must lie in (0.5, 1]")
    if not 0.0 < args.target_fraction <= 1.0:
        p.error("--target-fraction must lie in (0, 1]")
    return args


# ----------------------------------------------------------------------
# Training


def _datasets(loaded, batch_size, skip_batches=0, take_batches=None):
    import tensorflow as tf

    train = tf.data.Dataset.from_tensor_slices(loaded.train).batch(batch_size)
    if skip_batches:
        train = train.skip(skip_batches)
    if take_batches is not None:
        train = train.take(take_batches)
    val = tf.data.Dataset.from_tensor_slices(loaded.val).batch(4096)
    return (
        train.prefetch(tf.data.AUTOTUNE),
        val.cache().prefetch(tf.data.AUTOTUNE),
    )


def _read_curve(path, step_offset=0, seconds_offset=0.0):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [
        {
            "step": int(r["step"]) + step_offset,
            "val_auc": float(r["val_auc"]),
            "val_logloss": float(r["val_logloss"]),
            "train_seconds": float(r["train_seconds"]) + seconds_offset,
        }
        for r in rows
    ]


class Run:
    """One interaction and seed: a model trained in one or two phases."""

    def __init__(self, loaded, variant, seed, args, workdir):
        import keras

        from keras_adrec.training import build_ranking_model

        self.loaded = loaded
        self.variant = variant
        self.seed = seed
        self.args = args
        self.workdir = workdir
        self.fields = variant_fields(
            variant,
            PRESET,
            overrides={"learning_rate": args.learning_rate},
            batch_size=args.batch_size,
        )
        keras.utils.set_random_seed(seed)
        self.model = build_ranking_model(
            self.fields, loaded.vocabulary_sizes, loaded.num_dense
        )
        self.curve = []
        self.steps = 0
        self.train_seconds = 0.0
        self.wall_seconds = 0.0
        self.step_speeds = []
        self.steps_to_target = None
        self.seconds_to_target = None
        self.phases = 0

    def train(self, max_steps, target_auc=None):
        """Train from the current step up to `max_steps` (or the target)."""
        from keras_adrec.training import ConvergenceLogger

        if self.steps >= max_steps:
            return
        self.phases += 1
        path = os.path.join(
            self.workdir,
            f"{self.variant}_seed{self.seed}_phase{self.phases}.csv",
        )
        train, val = _datasets(
            self.loaded,
            self.args.batch_size,
            skip_batches=self.steps,
            take_batches=max_steps - self.steps,
        )
        logger = ConvergenceLogger(
            val,
            eval_every=self.args.eval_every,
            target_auc=target_auc,
            curve_path=path,
            batch_size=self.args.batch_size,
        )
        t0 = time.perf_counter()
        self.model.fit(
            train, epochs=1, callbacks=[logger], verbose=0, shuffle=False
        )
        self.wall_seconds += time.perf_counter() - t0
        self.curve += _read_curve(path, self.steps, self.train_seconds)
        if logger.samples_per_sec:
            self.step_speeds.append(logger.samples_per_sec)
        if logger.steps_to_target is not None:
            self.steps_to_target = self.steps + logger.steps_to_target
            self.seconds_to_target = (
                self.train_seconds + logger.seconds_to_target
            )
        self.steps += logger.steps
        self.train_seconds += logger.summary()["train_seconds"]

    def check_target(self, target_auc):
        """Steps and seconds to the target from the curve so far."""
        for point in self.curve:
            if point["val_auc"] >= target_auc:
                self.steps_to_target = point["step"]
                self.seconds_to_target = point["train_seconds"]
                return True
        return False

    def summary(self):
        last = self.curve[-1] if self.curve else {}
        return {
            "variant": self.variant,
            "seed": self.seed,
            "steps": self.steps,
            "steps_to_target": self.steps_to_target,
            "seconds_to_target": self.seconds_to_target,
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
            "final_auc": last.get("val_auc"),
            "final_logloss": last.get("val_logloss"),
            "best_auc": max((p["val_auc"] for p in self.curve), default=None),
            "samples_per_sec": (
                float(np.median(self.step_speeds)) if self.step_speeds else None
            ),
            "curve": self.curve,
        }


# ----------------------------------------------------------------------
# Report


def _mean(values):
    """The mean of the non-None values (None if there are none)."""
    return mean_std(values)[0]


def aggregate(runs, interactions):
    rows = []
    for variant in interactions:
        mine = [r for r in runs if r["variant"] == variant]
        reached = [r for r in mine if r["steps_to_target"] is not None]
        rows.append(
            {
                "variant": variant,
                "description": VARIANTS[variant][2],
                "seeds": len(mine),
                "reached": len(reached),
                "steps_to_target": _mean([r["steps_to_target"] for r in mine]),
                "seconds_to_target": _mean(
                    [r["seconds_to_target"] for r in mine]
                ),
                "auc_at_stop": _mean([r["final_auc"] for r in mine]),
                "steps_run": _mean([r["steps"] for r in mine]),
                "samples_per_sec": _mean([r["samples_per_sec"] for r in mine]),
            }
        )
    adrec = next((r for r in rows if r["variant"] == "adrec"), None)
    for row in rows:
        both = (
            adrec is not None
            and adrec["reached"] == adrec["seeds"]
            and row["reached"] == row["seeds"]
        )
        row["adrec_step_fraction"] = (
            adrec["steps_to_target"] / row["steps_to_target"] if both else None
        )
        row["adrec_speedup"] = (
            row["seconds_to_target"] / adrec["seconds_to_target"]
            if both
            else None
        )
    return rows


def plot(runs, target_auc, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    colors = {}
    for run in runs:
        color = colors.setdefault(run["variant"], f"C{len(colors)}")
        steps = [p["step"] for p in run["curve"]]
        seconds = [p["train_seconds"] for p in run["curve"]]
        aucs = [p["val_auc"] for p in run["curve"]]
        label = run["variant"] if run["seed"] == 0 else None
        for ax, x in zip(axes, (steps, seconds)):
            ax.plot(x, aucs, color=color, marker="o", markersize=2, label=label)
        if run["steps_to_target"] is not None:
            axes[0].axvline(
                run["steps_to_target"], color=color, linestyle=":", alpha=0.6
            )
            axes[1].axvline(
                run["seconds_to_target"], color=color, linestyle=":", alpha=0.6
            )
    for ax, xlabel in zip(
        axes, ("training step", "training seconds (evaluation excluded)")
    ):
        ax.axhline(target_auc, color="black", linestyle="--", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation AUC")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(report):
    s = report["settings"]
    data = report["data"]
    target = report["target"]
    lines = _report.header_lines(
        "Convergence to a target AUC (SYNTHETIC covariate-shift data)", report
    ) + [
        f"- Data: SYNTHETIC (`SyntheticCriteo` seed 0, shift strength "
        f"{s['shift_strength']}, {s['days']} days of "
        f"{s['rows_per_day']:,} rows): {data['train_rows']:,} training rows "
        f"(days 0-{s['days'] - 2}, in order), validation on the first "
        f"{data['val_rows']:,} rows of day {s['days'] - 1}; preprocessed "
        f"once ({data['prepare_seconds']:.0f} s).",
        f"- Model: RM1 preset with only the interaction changed; batch "
        f"{s['batch_size']}, SGD lr {s['learning_rate']:.3f} "
        f"(0.1 x sqrt(batch/128) unless set); at most "
        f"{data['max_steps']:,} steps (one epoch).",
        f"- Evaluation every {s['eval_every']} steps (exact AUC); a run "
        "stops at the first evaluation at or above the target. `train s`: "
        "seconds of training steps only (first-step tracing included, "
        "evaluation excluded).",
        "- Target: " + target["how"],
        "",
    ]
    columns = [
        ("interaction", "l"),
        ("reached", "r"),
        ("steps to target", "r"),
        ("train s to target", "r"),
        ("Ad-Rec steps / these", "r"),
        ("Ad-Rec speedup (time)", "r"),
        ("last val AUC", "r"),
        ("steps run", "r"),
        ("train samples/s", "r"),
    ]
    table = [
        [
            r["variant"],
            f"{r['reached']}/{r['seeds']}",
            _report.fmt(r["steps_to_target"], "{:,.0f}", "not reached"),
            _report.fmt(r["seconds_to_target"], "{:.1f}", "–"),
            _report.fmt(r["adrec_step_fraction"], "{:.0%}"),
            _report.fmt(r["adrec_speedup"], "{:.2f}x"),
            _report.fmt(r["auc_at_stop"]),
            _report.fmt(r["steps_run"], "{:,.0f}"),
            _report.fmt(r["samples_per_sec"], "{:,.0f}"),
        ]
        for r in report["rows"]
    ]
    lines += _report.markdown_table(columns, table)
    lines += [
        "",
        "Means over seeds; steps and seconds to target over the seeds that "
        "reached it. `Ad-Rec steps / these`: Ad-Rec's steps to target as a "
        "share of this interaction's (the paper's Figure 2 measure); "
        "`Ad-Rec speedup`: this interaction's training seconds to target "
        "over Ad-Rec's (Figure 3). Both only when every seed of both "
        "reached the target. `last val AUC` and `steps run`: the last "
        "evaluation of each run (a seed-0 run trains at least the pilot).",
    ]
    if report.get("pilot"):
        lines += ["", "Pilot (seed 0, first "
                  f"{report['pilot']['steps']} steps):", ""]  # fmt: skip
        lines += _report.markdown_table(
            [("interaction", "l"), ("val AUC after pilot", "r")],
            [
                [v, f"{auc:.4f}"]
                for v, auc in report["pilot"]["final_auc"].items()
            ],
        )
    lines += ["", f"Plot: `{os.path.basename(report['plot'])}`."]
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    tune_malloc_for_training()  # see keras_adrec.utils.allocator
    command = _report.command_line(REPORT_NAME, argv)
    load_at_start = _report.load_average()
    start = time.perf_counter()
    _report.log(f"{command}\nload average at start: {load_at_start}")

    t0 = time.perf_counter()
    loaded = load_comparison_data(
        synthetic_rows=args.rows_per_day * args.days,
        days=args.days,
        shift_strength=args.shift_strength,
    )
    features, labels = loaded.val
    loaded = dataclasses.replace(
        loaded,
        val=(
            {k: v[: args.val_rows] for k, v in features.items()},
            labels[: args.val_rows],
        ),
    )
    prepare_seconds = time.perf_counter() - t0
    train_rows = len(loaded.train[1])
    epoch_steps = -(-train_rows // args.batch_size)
    max_steps = min(args.max_steps or epoch_steps, epoch_steps)
    if args.pilot_steps is None:
        half = epoch_steps // 2 // args.eval_every * args.eval_every
        pilot_steps = min(max(half, args.eval_every), max_steps)
    else:
        pilot_steps = min(args.pilot_steps, max_steps)
    _report.log(
        f"SYNTHETIC data: {train_rows:,} training rows, "
        f"{len(loaded.val[1]):,} validation rows, {epoch_steps:,} steps "
        f"per epoch ({prepare_seconds:.0f} s to prepare)"
    )

    workdir = tempfile.mkdtemp(prefix="adrec_convergence_")
    pilot = None
    target_auc = args.target_auc
    first = {}
    if target_auc is None:
        for variant in args.interactions:
            run = Run(loaded, variant, 0, args, workdir)
            run.train(pilot_steps)
            first[variant] = run
            _report.log(
                f"  pilot {variant}: val AUC {run.curve[-1]['val_auc']:.4f} "
                f"after {run.steps} steps ({run.train_seconds:.0f} s)"
            )
        final = {v: r.curve[-1]["val_auc"] for v, r in first.items()}
        best = max(final, key=final.get)
        target_auc = args.target_fraction * final[best]
        pilot = {"steps": pilot_steps, "seed": 0, "final_auc": final}
        how = (
            f"{target_auc:.4f} = {args.target_fraction:g} x {final[best]:.4f}"
            f", the best validation AUC after a pilot of {pilot_steps} steps "
            f"({best}). The pilot is the start of each seed-0 run, which "
            "then continues (or stops where its pilot curve crossed the "
            "target)."
        )
    else:
        how = f"{target_auc:.4f}, given with `--target-auc`."
    _report.log(f"Target AUC: {target_auc:.4f}")

    runs = []
    for variant in args.interactions:
        for seed in range(args.seeds):
            run = first.get(variant) if seed == 0 else None
            if run is None:
                run = Run(loaded, variant, seed, args, workdir)
            if not run.check_target(target_auc):
                run.train(max_steps, target_auc)
            summary = run.summary()
            runs.append(summary)
            _report.log(
                f"  {variant} seed {seed}: "
                + (
                    f"target at step {summary['steps_to_target']} "
                    f"({summary['seconds_to_target']:.1f} s training)"
                    if summary["steps_to_target"] is not None
                    else f"target not reached in {summary['steps']} steps"
                )
                + f", AUC {summary['final_auc']:.4f}"
            )
            if seed == 0:
                first.pop(variant, None)  # free the model

    os.makedirs(args.output_dir, exist_ok=True)
    plot_path = os.path.join(args.output_dir, f"{REPORT_NAME}.png")
    plot(
        runs,
        target_auc,
        plot_path,
        f"RM1, batch {args.batch_size}, SYNTHETIC covariate-shift data "
        f"({train_rows:,} training rows); target AUC {target_auc:.4f}",
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
            "smoke": args.smoke,
            "interactions": args.interactions,
            "preset": PRESET,
            "rows_per_day": args.rows_per_day,
            "days": args.days,
            "shift_strength": args.shift_strength,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "seeds": args.seeds,
            "eval_every": args.eval_every,
            "target_fraction": args.target_fraction,
            "pilot_steps": pilot_steps if pilot else None,
            "max_steps": args.max_steps,
        },
        "data": {
            "synthetic": True,
            "source": loaded.source,
            "train_rows": train_rows,
            "val_rows": int(len(loaded.val[1])),
            "vocabulary_sizes": loaded.vocabulary_sizes,
            "prepare_seconds": prepare_seconds,
            "max_steps": max_steps,
        },
        "target": {"auc": target_auc, "how": how},
        "pilot": pilot,
        "rows": aggregate(runs, args.interactions),
        "runs": runs,
        "plot": os.path.basename(plot_path),  # beside this report
    }
    _report.write_report(args.output_dir, REPORT_NAME, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
