"""Mask rules against no mask and the baselines: the issue-13 selection.

Protocol (pre-registered in `benchmarks/mask_rules.md`): RM1 on the real
Criteo sample (rows 1-8,000 train, 8,001-10,000 validate) and RM3 on the
real Avazu sample (the same time-ordered 80/20 split), one epoch, seeds
0..N-1, validation AUC; every Ad-Rec mask variant, Ad-Rec without mask and
the baselines (dot, fm, autoint, dcnv2) in the same run, paired by seed.
Sparsity: mean kept keys per head on the first 1,024 validation rows after
the epoch (`keras_adrec.models.mask_diagnostics`).

`--diagnostics` instead trains RM1 on the Criteo sample with seed 0 for each
rule given by `--diagnostics-rules` and reports, before and after the epoch,
per head: kept keys, single-key rows and query/key kernel gradient norms on
the first 1,024 training rows.

Uses only public keras_adrec names. The real samples are research-only and
read in place (`benchmarks.report.shared_data_file`: `ADREC_DATA_DIR`,
else `../shared/data` beside the checkout).

Usage (from the repository root):
    python -m benchmarks.mask_rules
    python -m benchmarks.mask_rules --seeds 2 --datasets criteo
    python -m benchmarks.mask_rules --diagnostics \
        --diagnostics-rules paper,straight_through,relative

Writes `mask_rules.md` / `.json` (or, with `--diagnostics`,
`mask_diagnostics.md` / `.json`) to `--output-dir` (default
`benchmarks/results`) with the command, machine, versions and date.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from benchmarks import report as _report  # noqa: E402
from keras_adrec.utils import tune_malloc_for_training  # noqa: E402

REPORT_NAME = "mask_rules"
DIAGNOSTICS_NAME = "mask_diagnostics"
SAMPLES = {
    "criteo": ("criteo/train_head10k.txt", "rm1"),
    "avazu": ("avazu/train_head9999.csv", "rm3"),
}
BASELINES = ("dot", "fm", "autoint", "dcnv2")
WARMUP_STEPS = 32
SPARSITY_ROWS = 1024
# name -> (description, preset overrides; "preset" keeps the thresholds)
MASK_VARIANTS = {
    "nomask": ("Ad-Rec without mask", {"mask_thresholds": None}),
    "paper": ("paper rule, preset thresholds", {"mask_rule": "paper"}),
    "paper-fixed": (
        "paper rule, thresholds [0.01, 0.01]",
        {"mask_rule": "paper", "mask_thresholds": [0.01, 0.01]},
    ),
    "straight-through": (
        "straight-through, preset thresholds",
        {"mask_rule": "straight_through"},
    ),
    "relative": (
        "relative (min_keys 2), preset thresholds",
        {"mask_rule": "relative"},
    ),
    "relative-0.1": (
        "relative (min_keys 2), thresholds [0.1, 0.01]",
        {"mask_rule": "relative", "mask_thresholds": [0.1, 0.01]},
    ),
    "relative-0.01": (
        "relative (min_keys 2), thresholds [0.01, 0.01]",
        {"mask_rule": "relative", "mask_thresholds": [0.01, 0.01]},
    ),
    "paper-warmup": (
        f"paper rule, preset thresholds, warm-up {WARMUP_STEPS} steps",
        {"mask_rule": "paper", "mask_warmup_steps": WARMUP_STEPS},
    ),
    "relative-warmup": (
        f"relative, preset thresholds, warm-up {WARMUP_STEPS} steps",
        {"mask_rule": "relative", "mask_warmup_steps": WARMUP_STEPS},
    ),
}
CANDIDATES = (
    "paper",
    "straight-through",
    "relative",
    "paper-warmup",
    "relative-warmup",
)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="criteo,avazu")
    p.add_argument(
        "--variants",
        default=",".join(BASELINES + tuple(MASK_VARIANTS)),
        help="comma-separated, from "
        + ", ".join(BASELINES + tuple(MASK_VARIANTS)),
    )
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds are first-seed .. first-seed + seeds - 1",
    )
    p.add_argument(
        "--selection",
        choices=sorted(SELECTIONS),
        default="v1",
        help="the selection rule of benchmarks/mask_rules.md to apply",
    )
    p.add_argument(
        "--report-name",
        default=REPORT_NAME,
        help="file name (without extension) of the report",
    )
    p.add_argument("--output-dir", default=_report.RESULTS_DIR)
    p.add_argument("--diagnostics", action="store_true")
    p.add_argument(
        "--diagnostics-rules", default="paper,straight_through,relative"
    )
    args = p.parse_args(argv)
    args.datasets = [d for d in args.datasets.split(",") if d]
    args.variants = [v for v in args.variants.split(",") if v]
    for name in args.datasets:
        if name not in SAMPLES:
            p.error(f"unknown dataset {name!r}")
    for name in args.variants:
        if name not in BASELINES and name not in MASK_VARIANTS:
            p.error(f"unknown variant {name!r}")
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.first_seed < 0:
        p.error("--first-seed must be at least 0")
    return args


# ----------------------------------------------------------------------
# Data


def load(name):
    """The sample `name` split, preprocessed and held in memory."""
    from keras_adrec.data import load_ranking_data
    from keras_adrec.models import get_preset

    relative, preset = SAMPLES[name]
    path = _report.shared_data_file(relative)
    if path is None:
        raise FileNotFoundError(
            f"{relative} not found under {_report.shared_data_dir()} "
            "(set ADREC_DATA_DIR)"
        )
    fields = get_preset(preset)
    loaded = load_ranking_data(
        f"{name}:{path}",
        in_memory=True,
        val_fraction=0.2,
        min_frequency=fields.min_frequency,
        max_index_range=fields.max_index_range,
    )
    return {"name": name, "sample": relative, "preset": preset, "data": loaded}


def head(arrays, rows):
    features, labels = arrays
    return {k: v[:rows] for k, v in features.items()}, labels[:rows]


# ----------------------------------------------------------------------
# Training


def variant_fields(dataset, variant):
    from keras_adrec.models import get_preset

    if variant in BASELINES:
        return get_preset(dataset["preset"], interaction=variant)
    _, overrides = MASK_VARIANTS[variant]
    # Explicit, so that a preset's own warm-up never leaks into a variant:
    # the run of the results had presets without warm-up.
    overrides = {"mask_warmup_steps": 0, "min_keys": 2, **overrides}
    return get_preset(dataset["preset"], interaction="adrec", **overrides)


def build(loaded, fields, seed):
    """A compiled model for `loaded`, its weights drawn with `seed`."""
    import keras

    from keras_adrec.training import build_ranking_model

    keras.utils.set_random_seed(seed)
    return build_ranking_model(
        fields, loaded.vocabulary_sizes, loaded.num_dense
    )


def fit(model, loaded, fields):
    """Train `model` on `loaded.train` for the preset's epochs, in order."""
    from keras_adrec.jobs.compare import in_memory_datasets

    train_ds, _ = in_memory_datasets(loaded, fields.batch_size)
    model.fit(train_ds, epochs=fields.epochs, verbose=0, shuffle=False)
    return model


def validate(model, loaded):
    """Exact validation AUC."""
    from keras_adrec.training.metrics import roc_auc

    features, labels = loaded.val
    predictions = model.predict(features, batch_size=4096, verbose=0)
    return roc_auc(labels, predictions)


def run_one(dataset, variant, seed):
    from keras_adrec.models import mask_diagnostics

    loaded = dataset["data"]
    fields = variant_fields(dataset, variant)
    t0 = time.perf_counter()
    model = fit(build(loaded, fields, seed), loaded, fields)
    result = {
        "dataset": dataset["name"],
        "variant": variant,
        "seed": seed,
        "auc": validate(model, loaded),
        "seconds": time.perf_counter() - t0,
    }
    if variant in MASK_VARIANTS:
        features, _ = head(loaded.val, SPARSITY_ROWS)
        report = mask_diagnostics(model, features)
        result["mean_kept_keys"] = [
            [float(x) for x in block["mean_kept_keys"]] for block in report
        ]
        result["single_key_fraction"] = [
            [float(x) for x in block["single_key_fraction"]] for block in report
        ]
        result["num_keys"] = report[0]["num_keys"]
    return result


# ----------------------------------------------------------------------
# Statistics and selection


def paired(values, reference):
    """`(mean, standard error, verdict)` of the per-seed differences."""
    from keras_adrec.utils import paired_difference

    mean, se = paired_difference(values, reference)
    if se is None:
        return mean, None, "n/a"
    if mean > 2 * se:
        verdict = "beats, beyond noise"
    elif mean < -2 * se:
        verdict = "loses, beyond noise"
    else:
        verdict = "within noise"
    return mean, se, verdict


def summarise(runs, datasets, variants, seeds):
    """Per dataset and variant: AUC stats, paired diffs, sparsity."""
    from keras_adrec.utils import mean_std

    table = {}
    for name in datasets:
        by_variant = {}
        for variant in variants:
            source = variant
            if name == "criteo" and variant == "relative-0.1":
                source = "relative"  # same configuration on RM1
            rs = sorted(
                (
                    r
                    for r in runs
                    if r["dataset"] == name and r["variant"] == source
                ),
                key=lambda r: r["seed"],
            )
            if len(rs) < seeds:
                continue
            aucs = [r["auc"] for r in rs]
            entry = {"aucs": aucs, "source": source}
            entry["auc_mean"], entry["auc_std"] = mean_std(aucs)
            if "mean_kept_keys" in rs[0]:
                kept = np.mean([r["mean_kept_keys"][0] for r in rs], axis=0)
                single = np.mean(
                    [r["single_key_fraction"][0] for r in rs], axis=0
                )
                entry["mean_kept_keys"] = [float(x) for x in kept]
                entry["single_key_fraction"] = [float(x) for x in single]
                entry["num_keys"] = rs[0]["num_keys"]
            by_variant[variant] = entry
        nomask = by_variant.get("nomask")
        for variant, entry in by_variant.items():
            if nomask is not None and variant != "nomask":
                entry["vs_nomask"] = paired(entry["aucs"], nomask["aucs"])
        table[name] = by_variant
    return table


def best_baselines(table, datasets):
    """Per dataset, the highest mean validation AUC of the baselines."""
    best = {}
    for name in datasets:
        means = [
            table[name][b]["auc_mean"] for b in BASELINES if b in table[name]
        ]
        best[name] = max(means) if means else float("-inf")
    return best


def _measured_candidates(table, datasets):
    """`(variant, score, >= best baseline on both, RM1 entry)` for each
    candidate measured on every dataset; score = mean of the datasets'
    mean AUC."""
    best_baseline = best_baselines(table, datasets)
    for variant in CANDIDATES:
        if not all(variant in table[name] for name in datasets):
            continue
        score = float(
            np.mean([table[n][variant]["auc_mean"] for n in datasets])
        )
        above = all(
            table[n][variant]["auc_mean"] >= best_baseline[n] for n in datasets
        )
        yield variant, score, above, table["criteo"][variant]


def select_default(table, datasets):
    """The pre-registered selection rule of benchmarks/mask_rules.md (v1).

    Returns:
        `(default or None, notes, candidates)`; each candidate is
        `(variant, score, sparse on RM1, >= best baseline on both)`.
    """
    from keras_adrec.utils import paired_difference

    if set(datasets) != {"criteo", "avazu"}:
        return None, "selection needs both datasets", []
    candidates = [
        (variant, score, min(criteo["mean_kept_keys"]) <= 27 / 2, above)
        for variant, score, above, criteo in _measured_candidates(
            table, datasets
        )
    ]
    if not candidates:
        return None, "no candidate measured", []
    eligible = [c for c in candidates if c[2] and c[3]]
    notes = []
    if eligible:
        chosen = max(eligible, key=lambda c: c[1])
        notes.append(
            f"`{chosen[0]}` is the sparse candidate with the highest score "
            f"({chosen[1]:.4f}) and reaches the best baseline on both "
            "datasets."
        )
    else:
        chosen = max(candidates, key=lambda c: c[1])
        notes.append(
            "No candidate both keeps real sparsity on RM1 and reaches the "
            "best baseline on both datasets: sparsity and quality were not "
            f"had together. `{chosen[0]}` has the highest score "
            f"({chosen[1]:.4f})."
        )
    if chosen[0] != "paper" and "paper" in table["criteo"]:
        # Per seed, the mean over both datasets of each variant's AUC.
        mean, se = paired_difference(
            *(
                np.mean([table[n][v]["aucs"] for n in datasets], axis=0)
                for v in (chosen[0], "paper")
            )
        )
        notes.append(
            f"Paired difference to `paper`, averaged over both datasets: "
            f"{mean:+.4f} ± {_report.fmt(se)} (standard error)."
        )
        if se is None or mean - se <= 0:
            notes.append("Not one standard error above zero: keep `paper`.")
            chosen = ("paper",) + chosen[1:]
    return chosen[0], " ".join(notes), candidates


# A head "learns" (protocol v2) when at most this fraction of its query
# rows keeps a single key: such a row has weight exactly 1 on that key and
# sends no gradient to the head's query and key kernels.
MAX_SINGLE_KEY_FRACTION = 0.10


def heads_learning(entry):
    """Whether every head of block 0 keeps more than one key on at least
    `1 - MAX_SINGLE_KEY_FRACTION` of its query rows (mean over seeds)."""
    return max(entry["single_key_fraction"]) <= MAX_SINGLE_KEY_FRACTION


def select_default_v2(table, datasets):
    """The second pre-registered selection rule (benchmarks/mask_rules.md,
    "Protocol v2"): among the candidates whose every head learns on RM1 and
    whose mean AUC reaches the best baseline's on both datasets, the highest
    score; sparsity is reported, not required.

    Returns:
        `(default or None, notes, candidates)`; each candidate is
        `(variant, score, every head learning on RM1, >= best baseline on
        both, fewest mean kept keys of a head on RM1)`.
    """
    if set(datasets) != {"criteo", "avazu"}:
        return None, "selection needs both datasets", []
    candidates = [
        (
            variant,
            score,
            heads_learning(criteo),
            above,
            float(min(criteo["mean_kept_keys"])),
        )
        for variant, score, above, criteo in _measured_candidates(
            table, datasets
        )
    ]
    if not candidates:
        return None, "no candidate measured", []
    eligible = [c for c in candidates if c[2] and c[3]]
    if not eligible:
        return (
            None,
            "No candidate has every head learning on RM1 and reaches the "
            "best baseline on both datasets: the default is left unchanged.",
            candidates,
        )
    chosen = max(eligible, key=lambda c: c[1])
    notes = (
        f"`{chosen[0]}` has the highest score ({chosen[1]:.4f}) of the "
        "candidates whose every head learns on RM1 and that reach the best "
        "baseline on both datasets; its sparsest RM1 head keeps "
        f"{chosen[4]:.1f} of 27 keys"
        + (
            " (real sparsity)."
            if chosen[4] <= 27 / 2
            else " (not real sparsity: at most 13.5 was the v1 bar)."
        )
    )
    return chosen[0], notes, candidates


SELECTIONS = {"v1": select_default, "v2": select_default_v2}


# ----------------------------------------------------------------------
# Reports


def new_report(argv, load_at_start):
    """The fields every report of this script starts with; `machine` and
    `seconds` are filled in by `finish_report`."""
    command = _report.command_line(REPORT_NAME, argv)
    _report.log(f"{command}\nload average at start: {load_at_start}")
    return {
        "benchmark": REPORT_NAME,
        "command": command,
        "date": _report.utc_now(),
        "seconds": 0.0,
        "machine": None,
        "versions": _report.versions(),
    }


def finish_report(report, load_at_start, start):
    report["seconds"] = time.perf_counter() - start
    report["machine"] = _report.machine(load_at_start)


def results_markdown(report):
    seeds = report["seeds"]
    lines = _report.header_lines(
        "Mask rules: validation AUC and sparsity", report
    )
    lines += [
        "",
        "Protocol: `benchmarks/mask_rules.md` (pre-registered; selection "
        f"{report.get('selection_rule', 'v1')}). One epoch, seeds "
        f"{report.get('first_seed', 0)}-"
        f"{report.get('first_seed', 0) + seeds - 1}, exact validation AUC; "
        f"{_report.spread_label(seeds)}. `− no mask`: paired by seed, "
        "mean ± standard error; beyond noise = more than 2 standard errors. "
        f"Kept keys: mean kept keys per query row for each head on the first "
        f"{SPARSITY_ROWS:,} validation rows after the epoch, mean over seeds "
        "(block 0; head 0, head 1).",
        "",
    ]
    columns = [
        ("variant", "l"),
        ("what", "l"),
        ("val AUC (mean ± std)", "r"),
        ("− no mask (mean ± se)", "r"),
        ("vs no mask", "l"),
        ("kept keys per head", "r"),
        ("single-key rows per head", "r"),
        ("AUC per seed", "l"),
    ]
    for name, by_variant in report["table"].items():
        relative, preset = SAMPLES[name]
        lines += [f"## {name} ({preset.upper()}), `{relative}`", ""]
        rows = []
        for variant, e in by_variant.items():
            what = (
                MASK_VARIANTS[variant][0]
                if variant in MASK_VARIANTS
                else "baseline"
            )
            if e["source"] != variant:
                what += f" (same runs as `{e['source']}`)"
            diff = e.get("vs_nomask")
            kept = e.get("mean_kept_keys")
            single = e.get("single_key_fraction")
            rows.append(
                [
                    variant,
                    what,
                    f"{_report.fmt(e['auc_mean'])} ± "
                    f"{_report.fmt(e['auc_std'])}",
                    f"{diff[0]:+.4f} ± {_report.fmt(diff[1])}" if diff else "–",
                    diff[2] if diff else "–",
                    ", ".join(f"{k:.1f}" for k in kept) + f" of {e['num_keys']}"
                    if kept
                    else "–",
                    ", ".join(f"{100 * s:.0f}%" for s in single)
                    if single
                    else "–",
                    ", ".join(f"{a:.3f}" for a in e["aucs"]),
                ]
            )
        lines += _report.markdown_table(columns, rows)
        lines.append("")
    selection = report.get("selection")
    if selection:
        rule = report.get("selection_rule", "v1")
        lines += [
            f"## Selection (rule {rule} of benchmarks/mask_rules.md)",
            "",
        ]
        if rule == "v1":
            columns = [
                ("candidate", "l"),
                ("score (mean of both datasets)", "r"),
                ("sparse on RM1", "l"),
                (">= best baseline on both", "l"),
            ]
            rows = [
                [v, f"{score:.4f}", _yes(sparse), _yes(above)]
                for v, score, sparse, above in selection["candidates"]
            ]
        else:
            columns = [
                ("candidate", "l"),
                ("score (mean of both datasets)", "r"),
                ("every head learning on RM1", "l"),
                (">= best baseline on both", "l"),
                ("sparsest RM1 head, kept keys", "r"),
            ]
            rows = [
                [v, f"{score:.4f}", _yes(learn), _yes(above), f"{few:.1f}"]
                for v, score, learn, above, few in selection["candidates"]
            ]
        lines += _report.markdown_table(columns, rows)
        lines += [
            "",
            "Chosen default: "
            + (
                f"`{selection['default']}`."
                if selection["default"]
                else "none (unchanged)."
            )
            + f" {selection['notes']}",
            "",
        ]
    return lines


def _yes(flag):
    return "yes" if flag else "no"


def run_benchmark(args, argv):
    load_at_start = _report.load_average()
    start = time.perf_counter()
    report = new_report(argv, load_at_start)
    report["seeds"] = args.seeds
    report["first_seed"] = args.first_seed
    report["selection_rule"] = args.selection
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    runs = []
    for name in args.datasets:
        _report.log(f"{name}: loading")
        dataset = load(name)
        for variant in args.variants:
            if name == "criteo" and variant == "relative-0.1":
                continue  # the RM1 preset thresholds: same as `relative`
            for seed in seeds:
                result = run_one(dataset, variant, seed)
                runs.append(result)
                _report.log(
                    f"  {name} {variant} seed {seed}: AUC "
                    f"{result['auc']:.4f}"
                    + (
                        f", kept keys {result['mean_kept_keys'][0]}"
                        if "mean_kept_keys" in result
                        else ""
                    )
                )
    report["runs"] = runs
    report["table"] = summarise(runs, args.datasets, args.variants, args.seeds)
    select = SELECTIONS[args.selection]
    default, notes, candidates = select(report["table"], args.datasets)
    if candidates:
        report["selection"] = {
            "default": default,
            "notes": notes,
            "candidates": candidates,
        }
    finish_report(report, load_at_start, start)
    _report.write_report(
        args.output_dir, args.report_name, report, results_markdown(report)
    )


def run_diagnostics(args, argv):
    from keras_adrec.models import format_mask_diagnostics
    from keras_adrec.models import get_preset
    from keras_adrec.models import mask_diagnostics
    from keras_adrec.models.head_diagnostics import as_json

    load_at_start = _report.load_average()
    start = time.perf_counter()
    report = new_report(argv, load_at_start)
    loaded = load("criteo")["data"]
    features, labels = head(loaded.train, SPARSITY_ROWS)
    rules = [r for r in args.diagnostics_rules.split(",") if r]
    lines_by_rule = []
    report["rules"] = {}
    for rule in rules:
        fields = get_preset("rm1", mask_rule=rule)
        model = build(loaded, fields, seed=0)
        before = mask_diagnostics(model, features, labels)
        fit(model, loaded, fields)
        after = mask_diagnostics(model, features, labels)
        auc = validate(model, loaded)
        report["rules"][rule] = {
            "before": as_json(before),
            "after": as_json(after),
            "val_auc": auc,
        }
        lines_by_rule += [
            f"## mask_rule={rule!r}, mask_warmup_steps="
            f"{fields.mask_warmup_steps}",
            "",
        ]
        lines_by_rule += format_mask_diagnostics(before, "At initialisation:")
        lines_by_rule += [""]
        lines_by_rule += format_mask_diagnostics(
            after, f"After one epoch (validation AUC {auc:.4f}):"
        )
        lines_by_rule += [""]
        _report.log(
            f"{rule}: before {before[0]['mean_kept_keys']}, after "
            f"{after[0]['mean_kept_keys']}, AUC {auc:.4f}"
        )
    finish_report(report, load_at_start, start)
    lines = _report.header_lines(
        "Mask diagnostics, RM1 on the Criteo sample", report
    )
    lines += [
        "",
        "RM1 preset (thresholds [0.1, 0.01]), seed 0, one epoch on rows "
        "1-8,000 of `criteo/train_head10k.txt`. Statistics on the first "
        f"{SPARSITY_ROWS:,} training rows: mean kept keys per query row, "
        "fraction of query rows keeping one key, and the L2 norm of the "
        "gradient of the batch's mean binary cross-entropy (inference mode) "
        "with respect to the head's slice of the query / key kernel.",
        "",
    ] + lines_by_rule
    _report.write_report(args.output_dir, DIAGNOSTICS_NAME, report, lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    tune_malloc_for_training()  # see keras_adrec.utils.allocator
    if args.diagnostics:
        run_diagnostics(args, argv)
    else:
        run_benchmark(args, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
