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
read in place (`ADREC_DATA_DIR`, default `../shared/data` beside the
checkout).

Usage:
    python benchmarks/mask_rules.py
    python benchmarks/mask_rules.py --seeds 2 --datasets criteo
    python benchmarks/mask_rules.py --diagnostics \
        --diagnostics-rules paper,straight_through,relative
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# The checkout's keras_adrec, not an installed copy of another checkout.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"
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


def log(message):
    print(message, flush=True)


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
    p.add_argument("--output-dir", default=str(RESULTS_DIR))
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
    return args


# ----------------------------------------------------------------------
# Data


def data_file(relative):
    root = os.environ.get("ADREC_DATA_DIR")
    if root is None:
        root = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    path = pathlib.Path(root) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{relative} not found under ADREC_DATA_DIR={root}"
        )
    return path


def materialize(dataset):
    dense, sparse, labels = [], [], []
    for features, label in dataset:
        dense.append(features["dense"].numpy())
        sparse.append(features["sparse"].numpy())
        labels.append(label.numpy())
    return (
        {"dense": np.concatenate(dense), "sparse": np.concatenate(sparse)},
        np.concatenate(labels).reshape(-1),
    )


def load(name):
    import keras_adrec.data as data
    from keras_adrec.models import get_preset

    relative, preset = SAMPLES[name]
    fields = get_preset(preset)
    path = str(data_file(relative))
    split = {"val_fraction": 0.2, "split_mode": "time"}
    train_raw = data.make_dataset(name, path, 4096, split="train", **split)
    val_raw = data.make_dataset(name, path, 4096, split="val", **split)
    preprocessor = data.FeaturePreprocessor.fit(
        train_raw,
        data.SCHEMAS[name],
        min_frequency=fields["min_frequency"],
        max_index_range=fields["max_index_range"],
    )
    return {
        "name": name,
        "sample": relative,
        "preset": preset,
        "train": materialize(data.preprocess(train_raw, preprocessor)),
        "val": materialize(data.preprocess(val_raw, preprocessor)),
        "vocabulary_sizes": list(preprocessor.vocabulary_sizes),
        "num_dense": data.SCHEMAS[name].num_dense,
    }


def head(arrays, rows):
    features, labels = arrays
    return {k: v[:rows] for k, v in features.items()}, labels[:rows]


# ----------------------------------------------------------------------
# Training


def exact_auc(labels, scores):
    """Area under the ROC curve from ranks (ties get average ranks)."""
    labels = np.asarray(labels).reshape(-1) > 0.5
    scores = np.asarray(scores, "float64").reshape(-1)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    positives = labels.sum()
    negatives = len(labels) - positives
    return float(
        (ranks[labels].sum() - positives * (positives + 1) / 2)
        / (positives * negatives)
    )


def variant_fields(dataset, variant):
    from keras_adrec.models import get_preset

    if variant in BASELINES:
        return get_preset(dataset["preset"], interaction=variant)
    _, overrides = MASK_VARIANTS[variant]
    # Explicit, so that a preset's own warm-up never leaks into a variant:
    # the run of the results had presets without warm-up.
    overrides = {"mask_warmup_steps": 0, "min_keys": 2, **overrides}
    return get_preset(dataset["preset"], interaction="adrec", **overrides)


def build_model(dataset, fields, seed):
    import keras

    from keras_adrec.models import RankingModel

    keras.utils.set_random_seed(seed)
    model = RankingModel.from_preset(
        fields,
        vocabulary_sizes=dataset["vocabulary_sizes"],
        num_dense=dataset["num_dense"],
    )
    optimizer = keras.optimizers.get(
        {
            "class_name": fields["optimizer"],
            "config": {"learning_rate": fields["learning_rate"]},
        }
    )
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    return model


def train(model, dataset, fields):
    import tensorflow as tf

    train_ds = tf.data.Dataset.from_tensor_slices(
        (dataset["train"][0], dataset["train"][1].reshape(-1, 1))
    ).batch(fields["batch_size"])
    history = model.fit(
        train_ds, epochs=fields["epochs"], verbose=0, shuffle=False
    )
    return len(history.history["loss"])


def validate(model, dataset):
    features, labels = dataset["val"]
    predictions = model.predict(features, batch_size=4096, verbose=0)
    return exact_auc(labels, predictions)


def run_one(dataset, variant, seed):
    from keras_adrec.models import mask_diagnostics

    fields = variant_fields(dataset, variant)
    model = build_model(dataset, fields, seed)
    t0 = time.perf_counter()
    train(model, dataset, fields)
    result = {
        "dataset": dataset["name"],
        "variant": variant,
        "seed": seed,
        "auc": validate(model, dataset),
        "seconds": time.perf_counter() - t0,
    }
    if variant in MASK_VARIANTS:
        features, _ = head(dataset["val"], SPARSITY_ROWS)
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


def mean_std(values):
    values = np.asarray(values, "float64")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), std


def paired(values, reference):
    diff = np.asarray(values, "float64") - np.asarray(reference, "float64")
    mean = float(np.mean(diff))
    if len(diff) < 2:
        return mean, float("nan"), "n/a"
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
    if mean > 2 * se:
        verdict = "beats, beyond noise"
    elif mean < -2 * se:
        verdict = "loses, beyond noise"
    else:
        verdict = "within noise"
    return mean, se, verdict


def summarise(runs, datasets, variants, seeds):
    """Per dataset and variant: AUC stats, paired diffs, sparsity."""
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


def select_default(table, datasets):
    """The pre-registered selection rule of benchmarks/mask_rules.md."""
    if set(datasets) != {"criteo", "avazu"}:
        return None, "selection needs both datasets"
    best_baseline = {}
    for name in datasets:
        means = [
            table[name][b]["auc_mean"] for b in BASELINES if b in table[name]
        ]
        best_baseline[name] = max(means) if means else float("-inf")
    candidates = []
    for variant in CANDIDATES:
        if not all(variant in table[name] for name in datasets):
            continue
        score = np.mean([table[n][variant]["auc_mean"] for n in datasets])
        score = float(score)
        sparse = min(table["criteo"][variant]["mean_kept_keys"]) <= 27 / 2
        above = all(
            table[n][variant]["auc_mean"] >= best_baseline[n] for n in datasets
        )
        candidates.append((variant, score, sparse, above))
    if not candidates:
        return None, "no candidate measured"
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
        per_seed = np.mean(
            [
                np.asarray(table[n][chosen[0]]["aucs"])
                - np.asarray(table[n]["paper"]["aucs"])
                for n in datasets
            ],
            axis=0,
        )
        mean = float(np.mean(per_seed))
        se = float(np.std(per_seed, ddof=1) / np.sqrt(len(per_seed)))
        notes.append(
            f"Paired difference to `paper`, averaged over both datasets: "
            f"{mean:+.4f} ± {se:.4f} (standard error)."
        )
        if mean - se <= 0:
            notes.append("Not one standard error above zero: keep `paper`.")
            chosen = ("paper",) + chosen[1:]
    return chosen[0], " ".join(notes), candidates


# ----------------------------------------------------------------------
# Reports


def versions():
    import keras
    import tensorflow as tf

    import keras_adrec

    return {
        "python": platform.python_version(),
        "keras_adrec": getattr(keras_adrec, "__version__", "?"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def header(title, report):
    return [
        f"# {title}",
        "",
        f"- Command: `{report['command']}`",
        f"- Date: {report['date']} (total {report['seconds']:.0f} s)",
        f"- Machine: {report['cpus']} CPUs; load average (1, 5, 15 min) "
        f"{report['load_start']} at the start, {report['load_end']} at the "
        "end (shared machine; no timing claims).",
        "- Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
    ]


def fmt(x, pattern="{:.4f}"):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return pattern.format(x)


def results_markdown(report):
    seeds = report["seeds"]
    lines = header("Mask rules: validation AUC and sparsity", report)
    lines += [
        "Protocol: `benchmarks/mask_rules.md` (pre-registered). One epoch, "
        f"seeds 0-{seeds - 1}, exact validation AUC; mean ± sample std "
        f"(ddof=1) over {seeds} seeds. `− no mask`: paired by seed, mean ± "
        "standard error; beyond noise = more than 2 standard errors. "
        f"Kept keys: mean kept keys per query row for each head on the first "
        f"{SPARSITY_ROWS:,} validation rows after the epoch, mean over seeds "
        "(block 0; head 0, head 1).",
        "",
    ]
    for name, by_variant in report["table"].items():
        relative, preset = SAMPLES[name]
        lines += [
            f"## {name} ({preset.upper()}), `{relative}`",
            "",
            "| variant | what | val AUC (mean ± std) | − no mask (mean ± se) "
            "| vs no mask | kept keys per head | single-key rows per head "
            "| AUC per seed |",
            "|---|---|---:|---:|---|---:|---:|---|",
        ]
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
            lines.append(
                f"| {variant} | {what} | {fmt(e['auc_mean'])} ± "
                f"{fmt(e['auc_std'])} | "
                + (
                    f"{diff[0]:+.4f} ± {diff[1]:.4f} | {diff[2]}"
                    if diff
                    else "– | –"
                )
                + " | "
                + (
                    ", ".join(f"{k:.1f}" for k in kept) + f" of {e['num_keys']}"
                    if kept
                    else "–"
                )
                + " | "
                + (
                    ", ".join(f"{100 * s:.0f}%" for s in single)
                    if single
                    else "–"
                )
                + " | "
                + ", ".join(f"{a:.3f}" for a in e["aucs"])
                + " |"
            )
        lines.append("")
    selection = report.get("selection")
    if selection:
        lines += ["## Selection (rule of benchmarks/mask_rules.md)", ""]
        lines += [
            "| candidate | score (mean of both datasets) | sparse on RM1 "
            "| >= best baseline on both |",
            "|---|---:|---|---|",
        ]
        for variant, score, sparse, above in selection["candidates"]:
            lines.append(
                f"| {variant} | {score:.4f} | {'yes' if sparse else 'no'} "
                f"| {'yes' if above else 'no'} |"
            )
        lines += [
            "",
            f"Chosen default: `{selection['default']}`. {selection['notes']}",
            "",
        ]
    return lines


def machine_info():
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return ", ".join(f"{x:.2f}" for x in load)


def write(output_dir, name, report, lines):
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(
        json.dumps(report, indent=1, default=float) + "\n"
    )
    (output_dir / f"{name}.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {output_dir / name}.md and .json")


def base_report(argv, start):
    return {
        "command": "python benchmarks/mask_rules.py " + " ".join(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "cpus": os.cpu_count(),
        "load_start": machine_info(),
        "versions": versions(),
        "seconds": 0.0,
        "start": start,
    }


def run_benchmark(args, argv):
    start = time.perf_counter()
    report = base_report(argv, start)
    report["seeds"] = args.seeds
    runs = []
    for name in args.datasets:
        log(f"{name}: loading")
        dataset = load(name)
        for variant in args.variants:
            if name == "criteo" and variant == "relative-0.1":
                continue  # the RM1 preset thresholds: same as `relative`
            for seed in range(args.seeds):
                result = run_one(dataset, variant, seed)
                runs.append(result)
                log(
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
    selected = select_default(report["table"], args.datasets)
    if selected[0] is not None:
        report["selection"] = {
            "default": selected[0],
            "notes": selected[1],
            "candidates": selected[2],
        }
    report["seconds"] = time.perf_counter() - start
    report["load_end"] = machine_info()
    report.pop("start")
    write(args.output_dir, "mask_rules", report, results_markdown(report))


def run_diagnostics(args, argv):
    from keras_adrec.models import format_mask_diagnostics
    from keras_adrec.models import mask_diagnostics

    start = time.perf_counter()
    report = base_report(argv, start)
    dataset = load("criteo")
    features, labels = head(dataset["train"], SPARSITY_ROWS)
    rules = [r for r in args.diagnostics_rules.split(",") if r]
    lines_by_rule = []
    report["rules"] = {}
    for rule in rules:
        from keras_adrec.models import get_preset

        fields = get_preset("rm1", mask_rule=rule)
        model = build_model(dataset, fields, seed=0)
        model(features)  # build
        before = mask_diagnostics(model, features, labels)
        train(model, dataset, fields)
        after = mask_diagnostics(model, features, labels)
        auc = validate(model, dataset)
        report["rules"][rule] = {
            "before": _jsonable(before),
            "after": _jsonable(after),
            "val_auc": auc,
        }
        lines_by_rule += [
            f"## mask_rule={rule!r}, mask_warmup_steps="
            f"{fields['mask_warmup_steps']}",
            "",
        ]
        lines_by_rule += format_mask_diagnostics(before, "At initialisation:")
        lines_by_rule += [""]
        lines_by_rule += format_mask_diagnostics(
            after, f"After one epoch (validation AUC {auc:.4f}):"
        )
        lines_by_rule += [""]
        log(f"{rule}: before {before[0]['mean_kept_keys']}, after "
            f"{after[0]['mean_kept_keys']}, AUC {auc:.4f}")  # fmt: skip
    report["seconds"] = time.perf_counter() - start
    report["load_end"] = machine_info()
    report.pop("start")
    lines = header("Mask diagnostics, RM1 on the Criteo sample", report)
    lines += [
        "RM1 preset (thresholds [0.1, 0.01]), seed 0, one epoch on rows "
        "1-8,000 of `criteo/train_head10k.txt`. Statistics on the first "
        f"{SPARSITY_ROWS:,} training rows: mean kept keys per query row, "
        "fraction of query rows keeping one key, and the L2 norm of the "
        "gradient of the batch's mean binary cross-entropy (inference mode) "
        "with respect to the head's slice of the query / key kernel.",
        "",
    ] + lines_by_rule
    write(args.output_dir, "mask_diagnostics", report, lines)


def _jsonable(report):
    from keras_adrec.models.head_diagnostics import as_json

    return as_json(report)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.diagnostics:
        run_diagnostics(args, argv)
    else:
        run_benchmark(args, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
