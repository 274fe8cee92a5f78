"""Paired validation AUC of the sequential models RM4-RM7, two data sets.

For each seed the points, the negatives and the time split are made once
and every interaction of every preset trains and validates on exactly
those (a paired design): the seed fixes the negatives
(`prepare_taobao(seed=...)`), the shuffling of the training points and the
model's initialisation. Data sets (under `ADREC_DATA_DIR`):

- `taobao`: `taobao/UserBehavior_head84k.csv`, the first lines of
  Taobao's user-grouped `UserBehavior.csv`. Its last user's events are cut
  by the end of the sample, so that user is dropped
  (`keras_adrec.data.drop_cut_last_user`); the report names the user and
  the events dropped.
- `movielens`: `movielens/ml-100k.inter` as click sequences
  (`keras_adrec.data.prepare_movielens_sequences`: rating >= 4 is a click,
  each user's clicks in time order).

Both use `prepare_taobao`'s protocol: windows of `history_length` events
and a candidate, one random negative per positive, the windows whose
candidate is after the 70% quantile of candidate times validate
(later-period validation; every event of a training point is at or before
the cut). Each run trains the preset's budget (optimizer, learning rate,
warm-up, batch, epochs) and reports validation AUC and logloss. `--set
KEY=VALUE` replaces a preset field for every interaction alike (a training
setting such as `learning_rate` stays a fair race).
`--max-points-per-user N` keeps each user's N most recent windows per split
(`prepare_taobao`'s argument): a smaller split, for checking that a setting
still learns when there are fewer steps. TensorFlow's CPU kernels may sum
in a different order from run to run, so the same seed need not give the
same AUC twice; `--deterministic` turns on its op determinism
(`tf.config.experimental.enable_op_determinism`) so that it does.

The table gives, per preset, each interaction's mean ± sample std (ddof=1)
over the seeds, the best baseline (highest mean), and Ad-Rec's paired
difference to it: the mean of the per-seed differences ± its standard
error (std of the differences / sqrt(n)) and the 95% t interval.

Usage (from the repository root):
    python -m benchmarks.sequential_paired --dataset taobao \
        [--presets rm4,rm5] [--interactions dot,adrec] [--seeds 0,1,2,3,4] \
        [--set norm_first=false] [--max-points-per-user 20] \
        [--name NAME] [--output-dir DIR]
    python -m benchmarks.sequential_paired --merge A.json B.json --name NAME
    python -m benchmarks.sequential_paired --combine T.json M.json --name NAME
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from benchmarks import report as _report  # noqa: E402
from keras_adrec.utils import mean_std  # noqa: E402
from keras_adrec.utils import paired_difference  # noqa: E402

PRESETS = ("rm4", "rm5", "rm6", "rm7")
INTERACTIONS = ("dot", "fm", "autoint", "dcnv2", "adrec")
SAMPLES = {
    "taobao": "taobao/UserBehavior_head84k.csv",
    "movielens": "movielens/ml-100k.inter",
}
_INTERVAL = 0.95


def parse_args(argv):
    from keras_adrec.cli.arguments import parse_set

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(SAMPLES), default="taobao")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--interactions", default=",".join(INTERACTIONS))
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="replace a preset field for every interaction",
    )
    parser.add_argument(
        "--max-points-per-user",
        type=_positive,
        default=None,
        metavar="N",
        help="keep each user's N most recent windows per split (default: all)",
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="enable TensorFlow's op determinism: the same seed gives the "
        "same numbers in every run",
    )
    parser.add_argument("--output-dir", default=_report.RESULTS_DIR)
    parser.add_argument("--name", default="sequential_paired")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON")
    parser.add_argument(
        "--combine",
        nargs="+",
        default=None,
        metavar="JSON",
        help="write one report with a section per data set from these "
        "(merged) reports",
    )
    args = parser.parse_args(argv)
    args.presets = [p for p in args.presets.split(",") if p]
    args.interactions = [i for i in args.interactions.split(",") if i]
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    args.overrides = parse_set(args.set)
    return args


def _positive(text):
    """argparse `type=`: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expects an integer >= 1, got {text!r}"
        )
    return value


def load_events(dataset):
    """The data set's events and a line saying how they were read."""
    from keras_adrec import data

    relative = SAMPLES[dataset]
    path = _report.shared_data_file(relative)
    if path is None:
        raise SystemExit(f"{relative} not found; set ADREC_DATA_DIR.")
    if dataset == "movielens":
        events = data.movielens_click_events(str(path))
        note = (
            f"`{relative}`, ratings >= 4 as clicks: {events.num_events} clicks"
        )
        return events, note
    events = data.read_taobao_events(str(path))
    kept, dropped = data.drop_cut_last_user(events)
    note = f"`{relative}`: {events.num_events} events"
    if dropped is not None:
        note += (
            f"; the last user ({dropped}, "
            f"{events.num_events - kept.num_events} events) is cut by the "
            "end of the head-of-file sample and dropped"
        )
    return kept, note


def prepare(events, seed, history_length, max_points_per_user=None):
    from keras_adrec.data import prepare_taobao

    return prepare_taobao(
        events,
        history_length=history_length,
        max_points_per_user=max_points_per_user,
        seed=seed,
    )


def run_one(split, preset, interaction, seed, overrides):
    """Train one model on `split`; return its validation AUC and logloss."""
    import keras

    from keras_adrec.models import get_preset
    from keras_adrec.training import build_sequential_model
    from keras_adrec.training.metrics import evaluate_model

    fields = get_preset(preset, **{**overrides, "interaction": interaction})
    keras.utils.set_random_seed(seed)
    model = build_sequential_model(fields, split.vocabulary.vocabulary_sizes)
    train = split.train.to_dataset(fields.batch_size, shuffle=True, seed=seed)
    model.fit(train, epochs=fields.epochs, verbose=0, shuffle=False)
    metrics = evaluate_model(model, split.validation.to_dataset(4096))
    return {
        "preset": preset,
        "interaction": interaction,
        "seed": seed,
        "overrides": overrides,
        "val_auc": float(metrics["auc"]),
        "val_logloss": float(metrics["logloss"]),
    }


def _runs(report, preset, interaction):
    found = {
        r["seed"]: r["val_auc"]
        for r in report["runs"]
        if r["preset"] == preset and r["interaction"] == interaction
    }
    return dict(sorted(found.items()))


def _t_quantile(n):
    from scipy import stats

    return float(stats.t.ppf(0.5 + _INTERVAL / 2, n - 1))


def comparison(report, preset):
    """Ad-Rec against the best baseline of `preset` over the paired seeds.

    Returns:
        A dict with `best` (name), `n`, `mean`, `se`, `low`, `high` (the
        95% t interval), or None without Ad-Rec or a baseline.
    """
    adrec = _runs(report, preset, "adrec")
    baselines = {
        i: _runs(report, preset, i)
        for i in report["interactions"]
        if i != "adrec" and _runs(report, preset, i)
    }
    if not adrec or not baselines:
        return None
    best = max(baselines, key=lambda i: mean_std(baselines[i].values())[0])
    seeds = sorted(set(adrec) & set(baselines[best]))
    mean, se = paired_difference(
        [adrec[s] for s in seeds], [baselines[best][s] for s in seeds]
    )
    result = {"best": best, "n": len(seeds), "mean": mean, "se": se}
    if se is not None:
        half = _t_quantile(len(seeds)) * se
        result.update(low=mean - half, high=mean + half)
    return result


def _cell(values):
    mean, std = mean_std(values)
    if mean is None:
        return "–"
    if std is None:
        return f"{mean:.4f} (n=1)"
    return f"{mean:.4f} ± {std:.4f}"


def _difference_cells(found):
    if found is None:
        return ["–", "–", "–"]
    if found["se"] is None:
        return [found["best"], f"{found['mean']:+.4f} (n=1)", "–"]
    return [
        found["best"],
        f"{found['mean']:+.4f} ± {found['se']:.4f}",
        f"[{found['low']:+.4f}, {found['high']:+.4f}]",
    ]


def _windows_note(report):
    kept = report.get("max_points_per_user")
    if kept is None:
        return ""
    return f"; each user's {kept} most recent windows per split"


def _deterministic(report):
    """Whether the runs had TensorFlow's op determinism (older reports and
    runs without it have no entry)."""
    return bool(report.get("deterministic"))


def markdown(report):
    seeds = report["seeds"]
    title = f"Sequential models, paired seeds ({report['dataset']})"
    lines = _report.header_lines(title, report)
    lines += [
        f"- Data: {report['data_note']}.",
        "- Points per split (seed "
        f"{seeds[0]}; the split is the same for every seed, the negatives "
        f"differ): {report['train_points']} training, "
        f"{report['val_points']} validation (one negative per positive"
        f"{_windows_note(report)}); cut time {report['cut_time']}.",
        f"- Preset overrides for every interaction: "
        f"{json.dumps(report['overrides']) if report['overrides'] else 'none'}"
        f"; budget {report['budget']}"
        f"{'; TensorFlow op determinism on' if _deterministic(report) else ''}"
        ".",
        "",
        f"## Validation AUC, {_report.spread_label(len(seeds))} "
        f"({', '.join(map(str, seeds))}), and Ad-Rec − best baseline",
        "",
        "The difference is paired by seed: mean ± standard error (std of "
        "the per-seed differences / sqrt(n)); the interval is the 95% t "
        "interval.",
        "",
    ]
    interactions = report["interactions"]
    rows = []
    for preset in report["presets"]:
        row = [preset]
        for interaction in interactions:
            row.append(_cell(_runs(report, preset, interaction).values()))
        row += _difference_cells(comparison(report, preset))
        rows.append(row)
    lines += _report.markdown_table(
        [("preset", "l")]
        + [(i, "r") for i in interactions]
        + [("best baseline", "l"), ("adrec − best", "r"), ("95% t", "r")],
        rows,
    )
    lines += ["", "## Validation AUC per seed", ""]
    seed_rows = []
    for preset in report["presets"]:
        for interaction in interactions:
            found = _runs(report, preset, interaction)
            if found:
                seed_rows.append(
                    [preset, interaction]
                    + [_report.fmt(found.get(s)) for s in seeds]
                )
    lines += _report.markdown_table(
        [("preset", "l"), ("interaction", "l")]
        + [(f"seed {s}", "r") for s in seeds],
        seed_rows,
    )
    return lines


def merge(args, argv):
    """One report from the runs of several reports on the same data."""
    parts = []
    for path in args.merge:
        with open(path) as f:
            parts.append(json.load(f))
    for key in (
        "dataset",
        "overrides",
        "max_points_per_user",
        "deterministic",
        "train_points",
        "val_points",
    ):
        if len({json.dumps(part.get(key)) for part in parts}) > 1:
            raise SystemExit(f"Cannot merge: the reports differ in {key}.")
    runs = [run for part in parts for run in part["runs"]]
    report = dict(parts[0])
    report.update(
        command=_report.command_line("sequential_paired", argv),
        merged_commands=[part["command"] for part in parts],
        presets=[p for p in PRESETS if any(r["preset"] == p for r in runs)],
        interactions=[
            i for i in INTERACTIONS if any(r["interaction"] == i for r in runs)
        ],
        seeds=sorted({r["seed"] for r in runs}),
        runs=runs,
        seconds=sum(part["seconds"] for part in parts),
    )
    lines = markdown(report)
    lines.insert(
        3,
        "- Merged from: "
        + "; ".join(f"`{c}`" for c in report["merged_commands"])
        + " (run side by side; the total is the sum of their times).",
    )
    _report.write_report(args.output_dir, args.name, report, lines)


def combine(args, argv):
    """One markdown file with a section per data set, from their reports."""
    sections = []
    for path in args.combine:
        with open(path) as f:
            part = json.load(f)
        lines = markdown(part)
        lines[0] = "#" + lines[0]
        lines.insert(2, f"- Report: `{os.path.relpath(path)}`.")
        sections += lines + [""]
    lines = [
        "# Sequential models RM4-RM7, paired seeds, two data sets",
        "",
        "- Command: `" + _report.command_line("sequential_paired", argv) + "`",
        "",
    ] + sections
    os.makedirs(args.output_dir, exist_ok=True)
    md_path = os.path.join(args.output_dir, f"{args.name}.md")
    with open(md_path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    _report.log(f"Wrote {md_path}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.merge:
        merge(args, argv)
        return
    if args.combine:
        combine(args, argv)
        return
    from keras_adrec.models import get_preset

    if args.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    fields = get_preset(args.presets[0], **args.overrides)
    load_at_start = _report.load_average()
    start = time.perf_counter()
    events, note = load_events(args.dataset)
    splits = {
        seed: prepare(
            events, seed, fields.history_length, args.max_points_per_user
        )
        for seed in args.seeds
    }
    first = splits[args.seeds[0]]
    report = {
        "command": _report.command_line("sequential_paired", argv),
        "date": _report.utc_now(),
        "versions": _report.versions(),
        "dataset": args.dataset,
        "data_note": note,
        "presets": args.presets,
        "interactions": args.interactions,
        "seeds": args.seeds,
        "overrides": args.overrides,
        "max_points_per_user": args.max_points_per_user,
        "train_points": len(first.train),
        "val_points": len(first.validation),
        "cut_time": first.cut_time,
        "budget": (
            f"{fields.epochs} epoch(s), {fields.optimizer} lr "
            f"{fields.learning_rate} {fields.optimizer_config}, linear "
            f"warm-up over {fields.learning_rate_warmup_steps} steps, batch "
            f"{fields.batch_size}, history {fields.history_length}"
        ),
        "runs": [],
    }
    if args.deterministic:
        report["deterministic"] = True
    for preset in args.presets:
        for seed in args.seeds:
            for interaction in args.interactions:
                run = run_one(
                    splits[seed], preset, interaction, seed, args.overrides
                )
                _report.log(
                    f"{args.dataset} {preset} {interaction} seed {seed}: "
                    f"AUC {run['val_auc']:.4f}"
                )
                report["runs"].append(run)
                report["seconds"] = time.perf_counter() - start
                report["machine"] = _report.machine(load_at_start)
                _report.write_report(
                    args.output_dir, args.name, report, markdown(report)
                )


if __name__ == "__main__":
    main()
