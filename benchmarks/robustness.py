"""Robustness under shift: same-period and later-period AUC over seeds.

Issue 27: Ad-Rec's lead on same-period validation must survive later
periods and any seed. For each data set (a `keras_adrec.data.shift_splits`
split: training rows, same-period rows no step trains on, later-period
rows), every interaction trains one epoch per seed (and per learning rate
of `--lr-grid`); the table gives, per data set and interaction, the
same-period and the later-period AUC as mean ± sample std (ddof=1) over
the seeds, the worst seed's later-period AUC, and the gap (same − later).
With `--lr-grid`, every interaction is searched on the same grid and shown
at the learning rate with the best mean same-period AUC (never chosen on
the later period). The protocol that will use this table is
`benchmarks/robustness_protocol.md`.

Data sets (`--datasets`, comma-separated):

- `criteo`: RM1; real `criteo/train_head10k.txt` (day 0): rows 1-8,000
  train, 8,001-10,000 same period; later period: real
  `criteo/later_days_2185.txt` (rows from days 0-6, evaluation only).
- `avazu`: RM3; real `avazu/train_head9999.csv` in file order: the earliest
  80% the training period (a random 20% of it held out as the same
  period), the latest 20% the later period. The whole sample is one hour
  (14102100), so "later" is minutes later: a weak shift.
- `movielens`: RM3; real `movielens/ml-100k.inter` as a click task (rating
  >= 4), ordered by timestamp: the earliest 80% the training period (a
  random 20% held out as the same period), the latest 20% the later period.
- `taobao`: RM4 (`SequentialRankingModel`; the interaction runs per
  event); real `taobao/UserBehavior_head84k.csv` through `prepare_taobao`
  (20 history events + target, one negative per positive, cut at the 70%
  target-time quantile): windows with a target after the cut are the later
  period; each user's latest window before it is the same period.
- `synthetic-hard`: RM1; SYNTHETIC `SyntheticCriteo` with three times the
  default drift (`HARD_SHIFT`); days 0-4 train, day 5 is the later period,
  further rows of each training day the same period.

`--deterministic` turns on TensorFlow's op determinism, so that a seed
gives the same numbers in every run (on CPU its threads otherwise add
floating-point sums in a varying order); such runs are recorded as
deterministic and never stand in for runs without it, or the other way.

Every finished run is appended as one JSON line to
`<output-dir>/<report-name>.runs.jsonl`; a rerun with the same output
skips the runs already there (resumable). `--merge A.jsonl,B.jsonl` writes
the report of runs made by processes run side by side, training nothing.

Usage (from the repository root):
    python -m benchmarks.robustness
    python -m benchmarks.robustness --datasets criteo --seeds 2 \
        --interactions dot,adrec --output-dir /tmp/pilot
    python -m benchmarks.robustness --lr-grid 0.03,0.1,0.3 --first-seed 5
    python -m benchmarks.robustness --set use_ema=true --report-name ema
    python -m benchmarks.robustness --datasets criteo --deterministic
    python -m benchmarks.robustness --merge a/robustness.runs.jsonl,b/...

Writes `<report-name>.md` and `.json` (default `robustness`) to
`--output-dir` (default `benchmarks/results`) with the command, machine,
load and versions.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from benchmarks import report as _report  # noqa: E402
from keras_adrec.jobs.compare_runs import DEFAULT_SYNTHETIC  # noqa: E402
from keras_adrec.jobs.compare_runs import DEFAULT_SYNTHETIC_BATCH_SIZE  # noqa: E402
from keras_adrec.jobs.compare_runs import DEFAULT_SYNTHETIC_LEARNING_RATE  # noqa: E402
from keras_adrec.jobs.compare_variants import BASE_VARIANTS  # noqa: E402
from keras_adrec.jobs.compare_variants import VARIANTS  # noqa: E402
from keras_adrec.utils import mean_std  # noqa: E402

REPORT_NAME = "robustness"
TITLE = "Robustness under shift"
ALL_DATASETS = ("criteo", "avazu", "movielens", "taobao", "synthetic-hard")
SAMPLES = {
    "criteo": ("criteo/train_head10k.txt", "criteo/later_days_2185.txt"),
    "avazu": ("avazu/train_head9999.csv",),
    "movielens": ("movielens/ml-100k.inter",),
    "taobao": ("taobao/UserBehavior_head84k.csv",),
}
PRESETS = {
    "criteo": "rm1",
    "avazu": "rm3",
    "movielens": "rm3",
    "taobao": "rm4",
    "synthetic-hard": "rm1",
}
SEQUENTIAL = ("taobao",)
# Per data set, preset fields every run of it changes (before `--set`):
# the synthetic data train at `adrec compare`'s batch size and rate.
DATASET_OVERRIDES = {
    "synthetic-hard": {
        "batch_size": DEFAULT_SYNTHETIC_BATCH_SIZE,
        "learning_rate": DEFAULT_SYNTHETIC_LEARNING_RATE,
    },
}
# The generator of `adrec compare` with three times its drift.
HARD_SHIFT = dict(DEFAULT_SYNTHETIC, shift_strength=3.0)
LATER_FRACTION = 0.2
SAME_FRACTION = 0.2
SPLIT_SEED = 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--datasets",
        default=",".join(ALL_DATASETS),
        help=f"comma-separated, from {', '.join(ALL_DATASETS)}",
    )
    p.add_argument(
        "--interactions",
        default=",".join(BASE_VARIANTS),
        help="comma-separated interactions and Ad-Rec variants, from "
        f"{', '.join(VARIANTS)}",
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds per run")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds are first-seed .. first-seed + seeds - 1",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a preset field for every run (checked by the typed preset); "
        "repeatable",
    )
    p.add_argument(
        "--lr-grid",
        default=None,
        help="comma-separated learning rates searched for every "
        "interaction; the table shows each at its best same-period AUC "
        "(default: the preset's rate only)",
    )
    p.add_argument(
        "--synthetic-rows-per-day",
        type=int,
        default=HARD_SHIFT["rows_per_day"],
        help="synthetic rows per day (default %(default)s)",
    )
    p.add_argument(
        "--taobao-events",
        type=int,
        default=None,
        help="use only the first N Taobao events (default: all)",
    )
    p.add_argument(
        "--taobao-points-per-user",
        type=int,
        default=None,
        help="keep the N most recent windows per user and split (default: all)",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="enable TensorFlow's op determinism: a seed gives the same "
        "numbers in every run",
    )
    p.add_argument("--output-dir", default=_report.RESULTS_DIR)
    p.add_argument("--report-name", default=REPORT_NAME)
    p.add_argument(
        "--title",
        default=TITLE,
        help="the report's heading, e.g. to label a pilot",
    )
    p.add_argument(
        "--merge",
        default=None,
        help="comma-separated .runs.jsonl files: write their joint report "
        "and train nothing",
    )
    args = p.parse_args(argv)
    args.datasets = _split(args.datasets)
    args.interactions = _split(args.interactions)
    unknown = [d for d in args.datasets if d not in ALL_DATASETS]
    if unknown:
        p.error(f"--datasets: unknown {unknown}; choose from {ALL_DATASETS}")
    unknown = [v for v in args.interactions if v not in VARIANTS]
    if unknown:
        p.error(
            f"--interactions: unknown {unknown}; choose from {list(VARIANTS)}"
        )
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.first_seed < 0:
        p.error("--first-seed must be at least 0")
    if args.synthetic_rows_per_day < 10:
        p.error("--synthetic-rows-per-day must be at least 10")
    for flag in ("taobao_events", "taobao_points_per_user"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    args.overrides = _parse_set(p, args.set, args.datasets)
    args.lr_grid = _parse_grid(p, args.lr_grid)
    if args.merge is not None:
        args.merge = _split(args.merge)
        if not args.merge:
            p.error("--merge needs at least one .runs.jsonl file")
    return args


def _split(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_set(p, pairs, datasets):
    """`--set` pairs, checked against the preset of each data set."""
    from keras_adrec.cli.arguments import UsageError
    from keras_adrec.cli.arguments import parse_set
    from keras_adrec.models import get_preset

    try:
        overrides = parse_set(pairs)
    except UsageError as error:
        p.error(str(error))
    for name in sorted({PRESETS[d] for d in datasets}):
        try:
            get_preset(name, **overrides)
        except (TypeError, ValueError) as error:
            p.error(f"--set: {error}")
    return overrides


def _parse_grid(p, text):
    if text is None:
        return None
    try:
        grid = [float(x) for x in _split(text)]
    except ValueError:
        p.error(f"--lr-grid: expected comma-separated numbers, got {text!r}")
    if not grid or any(not (x > 0 and math.isfinite(x)) for x in grid):
        p.error(f"--lr-grid: every rate must be a positive number: {text!r}")
    return sorted(set(grid))


# ----------------------------------------------------------------------
# Data


def load_split(name, args):
    """`(ShiftSplit, None)`, or `(None, reason)` when a sample is absent."""
    from keras_adrec.data import SyntheticCriteo
    from keras_adrec.data import shift_splits
    from keras_adrec.models import get_preset

    preset = get_preset(PRESETS[name], **args.overrides)
    common = {
        "min_frequency": preset.min_frequency,
        "max_index_range": preset.max_index_range,
    }
    paths = [_report.shared_data_file(s) for s in SAMPLES.get(name, ())]
    if any(path is None for path in paths):
        missing = [s for s, p in zip(SAMPLES[name], paths) if p is None]
        return None, f"sample {', '.join(missing)} not found; skipped"
    if name == "criteo":
        return shift_splits.criteo_shift_split(*paths, **common), None
    if name == "taobao":
        return load_taobao(paths[0], args), None
    if name in ("avazu", "movielens"):
        return (
            shift_splits.positional_shift_split(
                name,
                paths[0],
                later_fraction=LATER_FRACTION,
                same_fraction=SAME_FRACTION,
                seed=SPLIT_SEED,
                **common,
            ),
            None,
        )
    settings = dict(HARD_SHIFT, rows_per_day=args.synthetic_rows_per_day)
    same_rows = max(1, settings["rows_per_day"] // 10)
    return (
        shift_splits.synthetic_shift_split(
            SyntheticCriteo(**settings), same_rows, **common
        ),
        None,
    )


def load_taobao(path, args):
    from keras_adrec.data import TaobaoEvents
    from keras_adrec.data import read_taobao_events
    from keras_adrec.data import shift_splits

    events = read_taobao_events(path)
    if args.taobao_events is not None:
        n = min(args.taobao_events, events.num_events)
        events = TaobaoEvents.from_arrays(
            events.user_id[:n],
            events.item_id[:n],
            events.category_id[:n],
            events.behavior[:n],
            events.timestamp[:n],
        )
    return shift_splits.taobao_shift_split(
        events, max_points_per_user=args.taobao_points_per_user
    )


def dataset_record(name, split):
    """The JSON line that describes a data set's split."""
    return {
        "type": "dataset",
        "name": name,
        "preset": PRESETS[name],
        "synthetic": name.startswith("synthetic"),
        "description": split.description,
        "sets": split.stats(),
        "vocabulary_sizes": split.vocabulary_sizes,
    }


# ----------------------------------------------------------------------
# Runs


def run_key(record):
    """What makes two runs the same run (a rerun skips it)."""
    return (
        record["dataset"],
        record["interaction"],
        record["learning_rate"],
        record["seed"],
        json.dumps(record["overrides"], sort_keys=True),
        # Runs written before the flag existed had it off.
        bool(record.get("deterministic", False)),
    )


def _same_run_both_ways(runs):
    """A run key (without the determinism) found both with and without
    op determinism, or None."""
    seen = {}
    for record in runs:
        *key, deterministic = run_key(record)
        key = tuple(key)
        if seen.setdefault(key, deterministic) != deterministic:
            return key
    return None


def read_runs(paths):
    """Dataset and run records of `.runs.jsonl` files (later lines win)."""
    datasets, runs = {}, {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for number, line in enumerate(f, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"{path}, line {number}: not JSON ({error.msg})"
                    ) from None
                if record.get("type") == "dataset":
                    datasets[record["name"]] = record
                else:
                    runs[run_key(record)] = record
    return datasets, list(runs.values())


def run_fields(name, interaction, learning_rate, overrides):
    """The preset of one run: data set, interaction, `--set`, rate."""
    from keras_adrec.jobs.compare_variants import variant_fields

    changes = dict(DATASET_OVERRIDES.get(name, {}), **overrides)
    fields = variant_fields(interaction, PRESETS[name], overrides=changes)
    if learning_rate is not None:
        fields = fields.replace(learning_rate=learning_rate)
    return fields


def train_run(
    split,
    name,
    interaction,
    learning_rate,
    seed,
    overrides,
    deterministic=False,
):
    """One epoch on the split's training rows; AUC on both periods.
    `deterministic` only labels the record: the caller turns TensorFlow's
    op determinism on for the process."""
    from keras_adrec.jobs.compare_runs import train_variant

    fields = run_fields(name, interaction, learning_rate, overrides)
    if name in SEQUENTIAL:
        summary = train_sequential(split, fields, seed)
    else:
        _, summary = train_variant(split.ranking_data(), fields, seed)
    record = {
        "type": "run",
        "dataset": name,
        "interaction": interaction,
        "learning_rate": fields.learning_rate,
        "seed": seed,
        "overrides": overrides,
        "same_auc": summary.get("holdout_auc"),
        "same_logloss": summary.get("holdout_logloss"),
        "later_auc": summary["auc"],
        "later_logloss": summary["logloss"],
        "steps": summary["steps"],
    }
    if deterministic:
        record["deterministic"] = True
    return record


def train_sequential(split, fields, seed):
    """One epoch of a sequential model on `TaobaoPoints`, as
    `benchmarks.quality` trains RM4; metrics on both periods."""
    import keras

    from keras_adrec.training import build_sequential_model
    from keras_adrec.training import evaluate_model

    keras.utils.set_random_seed(seed)
    model = build_sequential_model(fields, split.vocabulary_sizes)
    model.fit(
        split.train.to_dataset(fields.batch_size),
        epochs=fields.epochs,
        verbose=0,
        shuffle=False,
    )
    later = evaluate_model(model, split.later.to_dataset(4096))
    same = evaluate_model(model, split.same.to_dataset(4096))
    steps = math.ceil(split.train.num_points / fields.batch_size)
    return {
        "auc": later["auc"],
        "logloss": later["logloss"],
        "holdout_auc": same["auc"],
        "holdout_logloss": same["logloss"],
        "steps": steps * fields.epochs,
    }


def measure(args, runs_path):
    """Train every run not yet in `runs_path`, appending each as it ends."""
    datasets, done = read_runs([runs_path])
    finished = {run_key(r) for r in done}
    failed = []
    for name in args.datasets:
        _report.log(f"Dataset {name}: loading...")
        split, reason = load_split(name, args)
        if split is None:
            _report.log(f"Dataset {name}: {reason}")
            datasets[name] = {
                "type": "dataset",
                "name": name,
                "skipped": reason,
            }
            _append(runs_path, datasets[name])
            continue
        datasets[name] = dataset_record(name, split)
        _append(runs_path, datasets[name])
        grid = args.lr_grid or [None]
        for interaction in args.interactions:
            for rate in grid:
                learning_rate = run_fields(
                    name, interaction, rate, args.overrides
                ).learning_rate
                for seed in range(
                    args.first_seed, args.first_seed + args.seeds
                ):
                    key = run_key(
                        {
                            "dataset": name,
                            "interaction": interaction,
                            "learning_rate": learning_rate,
                            "seed": seed,
                            "overrides": args.overrides,
                            "deterministic": args.deterministic,
                        }
                    )
                    if key in finished:
                        continue
                    t0 = time.perf_counter()
                    try:
                        record = train_run(
                            split,
                            name,
                            interaction,
                            rate,
                            seed,
                            args.overrides,
                            args.deterministic,
                        )
                    except Exception as error:  # report it, go on
                        failed.append(key)
                        _report.log(
                            f"  {name} {interaction} lr {learning_rate} "
                            f"seed {seed}: failed: "
                            f"{type(error).__name__}: {error}"
                        )
                        continue
                    _append(runs_path, record)
                    finished.add(key)
                    _report.log(
                        f"  {name} {interaction} lr {learning_rate} seed "
                        f"{seed}: same {_report.fmt(record['same_auc'])}, "
                        f"later {_report.fmt(record['later_auc'])} "
                        f"({time.perf_counter() - t0:.0f} s)"
                    )
    return failed


def _append(path, record):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, default=_report._json_default) + "\n")


# ----------------------------------------------------------------------
# Tables


def _finite(value):
    return value is not None and math.isfinite(value)


def aggregate(runs):
    """One row for the runs of one (data set, interaction, rate)."""
    runs = sorted(runs, key=lambda r: r["seed"])
    same = [r["same_auc"] for r in runs]
    later = [r["later_auc"] for r in runs]
    gaps = [
        s - t if _finite(s) and _finite(t) else None
        for s, t in zip(same, later)
    ]
    same_mean, same_std = mean_std(same)
    later_mean, later_std = mean_std(later)
    gap_mean, gap_std = mean_std(gaps)
    valid = [r for r in runs if _finite(r["later_auc"])]
    worst = min(valid, key=lambda r: r["later_auc"]) if valid else None
    return {
        "dataset": runs[0]["dataset"],
        "interaction": runs[0]["interaction"],
        "learning_rate": runs[0]["learning_rate"],
        "seeds": [r["seed"] for r in runs],
        "same_auc_mean": same_mean,
        "same_auc_std": same_std,
        "later_auc_mean": later_mean,
        "later_auc_std": later_std,
        "gap_mean": gap_mean,
        "gap_std": gap_std,
        "worst_later_auc": None if worst is None else worst["later_auc"],
        "worst_seed": None if worst is None else worst["seed"],
        "later_aucs": later,
        "diverged": sum(
            1
            for r in runs
            if not (_finite(r["later_logloss"]) and _finite(r["later_auc"]))
        ),
    }


def tables(runs):
    """`(best, grid)`: per data set, each interaction at its best rate (by
    mean same-period AUC), and every (interaction, rate) row."""
    groups = {}
    for r in runs:
        key = (r["dataset"], r["interaction"], r["learning_rate"])
        groups.setdefault(key, []).append(r)
    grid = [aggregate(group) for group in groups.values()]
    best = {}
    for row in grid:
        key = (row["dataset"], row["interaction"])
        score = row["same_auc_mean"]
        score = -math.inf if score is None else score
        held = best.get(key)
        if held is None or score > (held["same_auc_mean"] or -math.inf):
            best[key] = row
    return list(best.values()), grid


def dataset_markdown(name, info, best, grid, spread):
    lines = [
        f"## {name}" + (" — SYNTHETIC" if name.startswith("synthetic") else ""),
        "",
    ]
    if info is None or info.get("skipped"):
        reason = "no runs" if info is None else info["skipped"]
        return lines + [f"Skipped: {reason}.", ""]
    lines += [
        f"Preset {info['preset'].upper()}. Split: {info['description']}.",
        "",
    ]
    lines += _report.markdown_table(
        [("set", "l"), ("rows", "r"), ("click rate", "r"), ("OOV share", "r")],
        [
            [
                part,
                f"{s['rows']:,}",
                f"{s['click_rate']:.3f}",
                _report.fmt(s["oov_share"], "{:.1%}"),
            ]
            for part, s in info["sets"].items()
        ],
    )
    lines.append("")
    rows = [r for r in best if r["dataset"] == name]
    rates = {r["learning_rate"] for r in grid if r["dataset"] == name}
    columns = [
        ("interaction", "l"),
        ("learning rate", "r"),
        (f"same-period AUC ({spread})", "r"),
        (f"later-period AUC ({spread})", "r"),
        ("worst seed (later AUC)", "r"),
        ("gap same − later", "r"),
        ("later AUC per seed", "l"),
    ]
    lines += _report.markdown_table(columns, [_row(r) for r in rows])
    lines.append("")
    if len(rates) > 1:
        lines += [
            "Every rate of the grid (the table above shows each "
            "interaction at its best mean same-period AUC):",
            "",
        ]
        lines += _report.markdown_table(
            columns,
            [
                _row(r)
                for r in sorted(
                    (r for r in grid if r["dataset"] == name),
                    key=lambda r: (r["interaction"], r["learning_rate"]),
                )
            ],
        )
        lines.append("")
    return lines


def _row(r):
    diverged = f" ({r['diverged']} diverged)" if r["diverged"] else ""
    return [
        r["interaction"] + diverged,
        f"{r['learning_rate']:g}",
        f"{_report.fmt(r['same_auc_mean'])} ± {_report.fmt(r['same_auc_std'])}",
        f"{_report.fmt(r['later_auc_mean'])} ± "
        f"{_report.fmt(r['later_auc_std'])}",
        f"{_report.fmt(r['worst_later_auc'])} (seed {r['worst_seed']})",
        f"{_report.fmt(r['gap_mean'], '{:+.4f}')} ± "
        f"{_report.fmt(r['gap_std'])}",
        ", ".join(_report.fmt(a, "{:.3f}") for a in r["later_aucs"]),
    ]


def _determinism_note(report):
    """`on`, `off` or `on in N of M runs` (older reports: `off`)."""
    on = report["settings"].get("deterministic_runs", 0)
    total = len(report["runs"])
    if on == 0:
        return "off"
    return "on" if on == total else f"on in {on} of {total} runs"


def markdown(report):
    seeds = sorted({s for r in report["best"] for s in r["seeds"]})
    spread = _report.spread_label(len(seeds))
    settings = report["settings"]
    lines = _report.header_lines(settings["title"], report) + [
        f"- Protocol: one epoch per run on the training rows; seeds "
        f"{', '.join(map(str, seeds))} (initialisation and dropout; data "
        "order fixed). Same-period AUC: rows of the training period no "
        "step trained on; later-period AUC: rows after it (never used to "
        "fit vocabularies or to choose anything). Gap = same − later, per "
        f"seed. {spread}. Worst seed: the lowest later-period AUC.",
        f"- Preset overrides (`--set`): {settings['overrides'] or 'none'}; "
        f"learning-rate grid: {settings['lr_grid'] or 'the preset rate'}"
        + (
            " (each interaction shown at its best mean same-period AUC)"
            if settings["lr_grid"]
            else ""
        )
        + f"; TensorFlow op determinism: {_determinism_note(report)}.",
        "- Interactions: "
        + "; ".join(
            f"`{v}` = {VARIANTS[v][2]}"
            for v in settings["interactions"]
            if v in VARIANTS
        )
        + ".",
        "",
    ]
    for name in settings["datasets"]:
        lines += dataset_markdown(
            name,
            report["datasets"].get(name),
            report["best"],
            report["grid"],
            spread,
        )
    return lines


def build_report(args, command, load_at_start, seconds, datasets, runs):
    best, grid = tables(runs)
    names = list(args.datasets)
    for name in datasets:
        if name not in names:
            names.append(name)
    interactions = list(args.interactions)
    for r in runs:
        if r["interaction"] not in interactions:
            interactions.append(r["interaction"])
    return {
        "benchmark": REPORT_NAME,
        "command": command,
        "date": _report.utc_now(),
        "seconds": seconds,
        "machine": _report.machine(load_at_start),
        "versions": _report.versions(),
        "settings": {
            "datasets": names,
            "interactions": interactions,
            "seeds": sorted({r["seed"] for r in runs}),
            "overrides": args.overrides,
            "lr_grid": args.lr_grid,
            "presets": {d: PRESETS[d] for d in names if d in PRESETS},
            "dataset_overrides": DATASET_OVERRIDES,
            "hard_shift": HARD_SHIFT,
            "std": "sample std (ddof=1)",
            "merged_from": args.merge,
            "title": args.title,
            "deterministic_runs": sum(
                bool(r.get("deterministic")) for r in runs
            ),
        },
        "datasets": datasets,
        "best": best,
        "grid": grid,
        "runs": runs,
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    command = _report.command_line(REPORT_NAME, argv)
    load_at_start = _report.load_average()
    start = time.perf_counter()
    _report.log(f"{command}\nload average at start: {load_at_start}")
    runs_path = os.path.join(args.output_dir, f"{args.report_name}.runs.jsonl")
    failed = []
    if args.merge is None:
        if args.deterministic:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        failed = measure(args, runs_path)
        datasets, runs = read_runs([runs_path])
        # The runs file may also hold runs made with the other setting.
        runs = [
            r
            for r in runs
            if bool(r.get("deterministic")) == args.deterministic
        ]
    else:
        missing = [p for p in args.merge if not os.path.exists(p)]
        if missing:
            print(f"--merge: no such file: {missing[0]}", file=sys.stderr)
            return 2
        datasets, runs = read_runs(args.merge)
        twice = _same_run_both_ways(runs)
        if twice:
            print(
                "--merge: the files hold the same run with and without "
                f"--deterministic: {twice}",
                file=sys.stderr,
            )
            return 2
        args.datasets = [d for d in args.datasets if d in datasets]
    report = build_report(
        args,
        command,
        load_at_start,
        time.perf_counter() - start,
        datasets,
        runs,
    )
    _report.write_report(
        args.output_dir, args.report_name, report, markdown(report)
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
