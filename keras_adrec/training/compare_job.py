"""`adrec compare`: every interaction on the same data, side by side.

Each interaction (and, with `--ablations`, each Ad-Rec ablation of the
paper's appendix D) trains on the same rows, split and preprocessing, for
several seeds. The run writes to the output directory:

- `results.md` and `results.json`: val AUC and logloss (mean ± std over
  seeds), steps and training seconds to the target AUC, training samples/s;
- `convergence.png`: val AUC against step, one line per interaction;
- `attention_maps.png`: Ad-Rec's per-head attention before and after the
  threshold mask for a few validation samples, labelled by feature (like
  the paper's Figures 14-16);
- `curves/VARIANT_seedS.csv`: each run's convergence curve.

Without `--data` it runs on the embedded synthetic covariate-shift data
(`keras_adrec.data.SyntheticCriteo`): the first days train, the last day
validates, so validation sees shifted data. Everything made from it says
"synthetic".

Preprocessing runs once; the preprocessed rows are kept in memory and every
run reads them from there, so the comparison measures the models.
"""

import json
import pathlib
import time

import numpy as np

# name -> (interaction, preset overrides, what it is)
VARIANTS = {
    "dot": ("dot", {}, "DLRM pairwise dot products"),
    "fm": ("fm", {}, "DeepFM factorization machine"),
    "autoint": ("autoint", {}, "AutoInt self-attention"),
    "dcnv2": ("dcnv2", {}, "DCN-v2 cross network"),
    "adrec": ("adrec", {}, "Ad-Rec, per-head masks (paper)"),
    "adrec-nomask": (
        "adrec",
        {"mask_thresholds": None},
        "Ad-Rec without mask (Table 4)",
    ),
    "adrec-fixed": (
        "adrec",
        {"mask_thresholds": "fixed"},
        "Ad-Rec, one threshold 0.01 for all heads (Table 4)",
    ),
    "adrec-noln": (
        "adrec",
        {"use_layer_norm": False},
        "Ad-Rec without LayerNorm (Table 3)",
    ),
    "adrec-postln": (
        "adrec",
        {"norm_first": False},
        "Ad-Rec, post-LN as the released code",
    ),
    "adrec-pos": (
        "adrec",
        {"positional_embedding": True},
        "Ad-Rec with positional embedding (D.1)",
    ),
}
BASE_VARIANTS = ("dot", "fm", "autoint", "dcnv2", "adrec")
ABLATIONS = (
    "adrec-nomask",
    "adrec-fixed",
    "adrec-noln",
    "adrec-postln",
    "adrec-pos",
)
FIXED_THRESHOLD = 0.01
DEFAULT_SYNTHETIC_ROWS = 140_000
DEFAULT_DAYS = 7


def add_compare_parser(subparsers):
    p = subparsers.add_parser(
        "compare",
        help="train every interaction on the same data and compare",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", default=None, help="KIND:PATH")
    source.add_argument(
        "--synthetic",
        type=int,
        default=None,
        metavar="ROWS",
        help=f"synthetic rows in all (default {DEFAULT_SYNTHETIC_ROWS})",
    )
    p.add_argument("--days", type=int, default=DEFAULT_DAYS)
    p.add_argument("--shift-strength", type=float, default=1.0)
    p.add_argument("--preset", default="rm1")
    p.add_argument("--interactions", default=",".join(BASE_VARIANTS))
    p.add_argument("--ablations", action="store_true")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--target-auc", type=float, default=None)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--output", default="adrec-compare")
    p.add_argument("--quiet", action="store_true")


def run_compare(args):
    """CLI adapter: check usage, then `compare(...)`."""
    from keras_adrec.cli import UsageError
    from keras_adrec.cli import _parse_set
    from keras_adrec.models import get_preset
    from keras_adrec.training.ranking_job import parse_data_spec

    variants = [v.strip() for v in args.interactions.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UsageError(
            f"unknown interaction(s) {', '.join(unknown)}; choose from "
            f"{', '.join(VARIANTS)}"
        )
    if args.ablations:
        variants += [v for v in ABLATIONS if v not in variants]
    overrides = _parse_set(args.set)
    try:
        get_preset(args.preset, **overrides)
        if args.data:
            parse_data_spec(args.data)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    if args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    if args.synthetic is not None and args.synthetic < 10 * args.days:
        raise UsageError("--synthetic needs at least 10 rows per day")
    if args.days < 2:
        raise UsageError("--days must be at least 2 (train days + 1 val day)")
    result = compare(
        data=args.data,
        synthetic_rows=args.synthetic,
        days=args.days,
        shift_strength=args.shift_strength,
        preset=args.preset,
        variants=variants,
        seeds=args.seeds,
        target_auc=args.target_auc,
        eval_every=args.eval_every,
        val_fraction=args.val_fraction,
        batch_size=args.batch_size,
        overrides=overrides,
        output=args.output,
        verbose=not args.quiet,
    )
    print(f"Results: {result['paths']['markdown']}")
    print(f"Convergence plot: {result['paths']['convergence']}")
    if result["paths"].get("attention"):
        print(f"Attention maps: {result['paths']['attention']}")


def _log(verbose, message):
    if verbose:
        print(message, flush=True)


def _materialize(dataset):
    """Preprocessed batches -> (features dict of arrays, labels array)."""
    dense, sparse, labels = [], [], []
    for features, label in dataset:
        dense.append(features["dense"].numpy())
        sparse.append(features["sparse"].numpy())
        labels.append(label.numpy())
    if not labels:
        raise ValueError("The data yielded no rows.")
    return (
        {"dense": np.concatenate(dense), "sparse": np.concatenate(sparse)},
        np.concatenate(labels),
    )


def load_comparison_data(
    data=None,
    synthetic_rows=None,
    days=DEFAULT_DAYS,
    shift_strength=1.0,
    val_fraction=0.2,
    min_frequency=1,
    max_index_range=None,
    seed=0,
):
    """Read, split and preprocess once; return arrays and a description.

    Returns:
        dict with `train` and `val` (`(features, labels)` numpy pairs),
        `vocabulary_sizes`, `num_dense`, `feature_names` and `source`
        (a dict describing the data; `synthetic` is True for generated data).
    """
    from keras_adrec import data as adrec_data
    from keras_adrec.data.synthetic import SyntheticCriteo
    from keras_adrec.training.ranking_job import parse_data_spec

    parse_batch = 4096
    if data:
        kind, paths = parse_data_spec(data)
        schema = adrec_data.SCHEMAS[kind]
        split = {"val_fraction": val_fraction, "split_mode": "time"}
        train_raw = adrec_data.make_dataset(
            kind, paths, parse_batch, split="train", **split
        )
        val_raw = adrec_data.make_dataset(
            kind, paths, parse_batch, split="val", **split
        )
        source = {
            "synthetic": False,
            "kind": kind,
            "paths": [str(p) for p in paths],
            "split": f"time-ordered, last {val_fraction:.0%} validation",
        }
    else:
        rows = synthetic_rows or DEFAULT_SYNTHETIC_ROWS
        generator = SyntheticCriteo(
            rows_per_day=max(1, rows // days),
            num_days=days,
            seed=seed,
            shift_strength=shift_strength,
        )
        schema = adrec_data.CRITEO_SCHEMA
        train_raw = generator.dataset(
            days=list(range(days - 1)), batch_size=parse_batch
        )
        val_raw = generator.dataset(days=[days - 1], batch_size=parse_batch)
        source = {
            "synthetic": True,
            "generator": generator.describe(),
            "split": f"days 0-{days - 2} train, day {days - 1} validation",
        }
    preprocessor = adrec_data.FeaturePreprocessor.fit(
        train_raw,
        schema,
        min_frequency=min_frequency,
        max_index_range=max_index_range,
    )
    with adrec_data.raise_data_format_errors():
        train = _materialize(adrec_data.preprocess(train_raw, preprocessor))
        val = _materialize(adrec_data.preprocess(val_raw, preprocessor))
    return {
        "train": train,
        "val": val,
        "vocabulary_sizes": list(preprocessor.vocabulary_sizes),
        "num_dense": schema.num_dense,
        "feature_names": ["dense"] + list(schema.categorical_names),
        "source": source,
    }


def _datasets(loaded, batch_size, seed):
    import tensorflow as tf

    train = (
        tf.data.Dataset.from_tensor_slices(loaded["train"])
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val = (
        tf.data.Dataset.from_tensor_slices(loaded["val"])
        .batch(4096)
        .prefetch(tf.data.AUTOTUNE)
    )
    return train, val


def _variant_fields(variant, preset, overrides, batch_size):
    from keras_adrec.models import get_preset

    interaction, changes, _ = VARIANTS[variant]
    fields = get_preset(preset, **overrides)
    changes = dict(changes)
    if changes.get("mask_thresholds") == "fixed":
        changes["mask_thresholds"] = [FIXED_THRESHOLD] * fields["num_heads"]
    fields.update(changes)
    fields["interaction"] = interaction
    if batch_size:
        fields["batch_size"] = int(batch_size)
    return fields


def run_one(loaded, variant, seed, fields, eval_every, target_auc, curve_path):
    """Train one variant with one seed; return `(model, summary)`."""
    import keras

    from keras_adrec.models import RankingModel
    from keras_adrec.training.convergence_logger import ConvergenceLogger
    from keras_adrec.training.ranking_job import make_optimizer

    keras.utils.set_random_seed(seed)
    train, val = _datasets(loaded, fields["batch_size"], seed)
    model = RankingModel.from_preset(
        fields,
        vocabulary_sizes=loaded["vocabulary_sizes"],
        num_dense=loaded["num_dense"],
    )
    model.compile(
        optimizer=make_optimizer(fields["optimizer"], fields["learning_rate"]),
        loss="binary_crossentropy",
    )
    logger = ConvergenceLogger(
        val,
        eval_every=eval_every,
        target_auc=target_auc,
        curve_path=curve_path,
        batch_size=fields["batch_size"],
    )
    model.fit(
        train,
        epochs=fields["epochs"],
        callbacks=[logger],
        verbose=0,
        shuffle=False,
    )
    summary = logger.summary()
    summary["curve"] = [
        {"step": r["step"], "val_auc": r["val_auc"]} for r in logger.rows
    ]
    return model, summary


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values))


def aggregate(variant, runs):
    """Mean ± std over seeds of one variant's run summaries."""
    auc, auc_std = _mean_std([r["auc"] for r in runs])
    loss, loss_std = _mean_std([r["logloss"] for r in runs])
    reached = [r for r in runs if r["steps_to_target"] is not None]
    steps, _ = _mean_std([r["steps_to_target"] for r in reached])
    seconds, _ = _mean_std([r["seconds_to_target"] for r in reached])
    speed, _ = _mean_std([r["samples_per_sec"] for r in runs])
    return {
        "variant": variant,
        "description": VARIANTS[variant][2],
        "seeds": len(runs),
        "auc_mean": auc,
        "auc_std": auc_std,
        "logloss_mean": loss,
        "logloss_std": loss_std,
        "reached_target": len(reached),
        "steps_to_target": steps,
        "seconds_to_target": seconds,
        "samples_per_sec": speed,
        "steps": runs[0]["steps"],
    }


def _fmt(value, pattern):
    return "–" if value is None else pattern.format(value)


def markdown_table(rows, target_auc, source):
    label = "SYNTHETIC data" if source["synthetic"] else "data"
    lines = [
        f"Validation on {label} ({source['split']}).",
        "",
        "| interaction | val AUC | val logloss | steps to target | "
        "train s to target | train samples/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        target = (
            "–"
            if target_auc is None
            else (
                f"{row['steps_to_target']:.0f} ({row['reached_target']}/"
                f"{row['seeds']} seeds)"
                if row["steps_to_target"] is not None
                else f"not reached (0/{row['seeds']})"
            )
        )
        lines.append(
            f"| {row['variant']} | "
            f"{_fmt(row['auc_mean'], '{:.4f}')} ± "
            f"{_fmt(row['auc_std'], '{:.4f}')} | "
            f"{_fmt(row['logloss_mean'], '{:.4f}')} ± "
            f"{_fmt(row['logloss_std'], '{:.4f}')} | {target} | "
            f"{_fmt(row['seconds_to_target'], '{:.1f}')} | "
            f"{_fmt(row['samples_per_sec'], '{:,.0f}')} |"
        )
    return "\n".join(lines)


def plot_convergence(runs_by_variant, path, title):
    # A bare Figure (no pyplot): no global backend switch, no GUI needed.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100)
    ax = fig.subplots()
    for variant, runs in runs_by_variant.items():
        steps = [p["step"] for p in runs[0]["curve"]]
        length = min(len(r["curve"]) for r in runs)
        aucs = np.array(
            [[p["val_auc"] for p in r["curve"][:length]] for r in runs]
        )
        mean = aucs.mean(axis=0)
        ax.plot(steps[:length], mean, marker="o", markersize=3, label=variant)
        if len(runs) > 1:
            ax.fill_between(
                steps[:length],
                mean - aucs.std(axis=0),
                mean + aucs.std(axis=0),
                alpha=0.15,
            )
    ax.set_xlabel("training step")
    ax.set_ylabel("validation AUC")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def plot_attention_maps(model, features, feature_names, path, title):
    """Per head: first-pass and masked probabilities, averaged over samples.

    The maps of the first Ad-Rec block, for the given validation samples.
    """
    import keras
    from matplotlib.figure import Figure

    tokens, _ = model.interaction_tokens(features, training=False)
    maps = model.interaction.attention_maps(tokens)[0]
    unmasked = keras.ops.convert_to_numpy(maps["unmasked"]).mean(axis=0)
    masked = keras.ops.convert_to_numpy(maps["masked"]).mean(axis=0)
    thresholds = model.interaction.blocks[0].mask_thresholds
    heads = unmasked.shape[0]
    fig = Figure(figsize=(11, 5.2 * heads), dpi=80)
    axes = fig.subplots(heads, 2, squeeze=False)
    ticks = np.arange(len(feature_names))
    for h in range(heads):
        theta = "no mask" if thresholds is None else f"θ={thresholds[h]:g}"
        for col, (name, values) in enumerate(
            (("first pass", unmasked[h]), (f"masked ({theta})", masked[h]))
        ):
            ax = axes[h][col]
            image = ax.imshow(values, cmap="viridis", vmin=0.0)
            ax.set_title(f"head {h}: {name}", fontsize=9)
            ax.set_xticks(ticks, feature_names, rotation=90, fontsize=6)
            ax.set_yticks(ticks, feature_names, fontsize=6)
            ax.set_xlabel("key feature", fontsize=8)
            ax.set_ylabel("query feature", fontsize=8)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    kept = float((masked > 0).mean())
    return {"kept_fraction_of_mean_map": kept}


def compare(
    data=None,
    synthetic_rows=None,
    days=DEFAULT_DAYS,
    shift_strength=1.0,
    preset="rm1",
    variants=BASE_VARIANTS,
    seeds=3,
    target_auc=None,
    eval_every=None,
    val_fraction=0.2,
    batch_size=None,
    overrides=None,
    output="adrec-compare",
    verbose=True,
    attention_samples=8,
):
    """Train each variant for each seed on the same data and report.

    Returns:
        dict with `rows` (aggregated table rows), `runs` (per-run
        summaries), `source` and `paths` of the written files.
    """
    from keras_adrec.models import get_preset

    start = time.perf_counter()
    output = pathlib.Path(output)
    (output / "curves").mkdir(parents=True, exist_ok=True)
    overrides = dict(overrides or {})
    base = get_preset(preset, **overrides)
    _log(verbose, "Preparing data (read, split and preprocess once)...")
    loaded = load_comparison_data(
        data=data,
        synthetic_rows=synthetic_rows,
        days=days,
        shift_strength=shift_strength,
        val_fraction=val_fraction,
        min_frequency=base["min_frequency"],
        max_index_range=base["max_index_range"],
    )
    source = loaded["source"]
    train_rows = len(loaded["train"][1])
    val_rows = len(loaded["val"][1])
    kind = "synthetic" if source["synthetic"] else source["kind"]
    _log(
        verbose,
        f"Data ({kind}): {train_rows:,} training rows, {val_rows:,} "
        f"validation rows; {source['split']}.",
    )
    batch = batch_size or base["batch_size"]
    steps_per_epoch = -(-train_rows // batch)
    if eval_every is None:
        eval_every = max(1, steps_per_epoch * base["epochs"] // 10)
    runs_by_variant = {}
    models = {}
    total = len(variants) * seeds
    count = 0
    for variant in variants:
        fields = _variant_fields(variant, preset, overrides, batch_size)
        for seed in range(seeds):
            count += 1
            t0 = time.perf_counter()
            model, summary = run_one(
                loaded,
                variant,
                seed,
                fields,
                eval_every,
                target_auc,
                str(output / "curves" / f"{variant}_seed{seed}.csv"),
            )
            summary.update({"variant": variant, "seed": seed})
            runs_by_variant.setdefault(variant, []).append(summary)
            if seed == 0:
                models[variant] = model
            _log(
                verbose,
                f"[{count}/{total}] {variant} seed {seed}: "
                f"val AUC {summary['auc']:.4f}, logloss "
                f"{summary['logloss']:.4f}, "
                f"{summary['samples_per_sec'] or 0:,.0f} samples/s "
                f"({time.perf_counter() - t0:.0f} s)",
            )
    rows = [aggregate(v, runs) for v, runs in runs_by_variant.items()]
    suffix = " — SYNTHETIC data" if source["synthetic"] else ""
    paths = {
        "markdown": str(output / "results.md"),
        "json": str(output / "results.json"),
        "convergence": str(output / "convergence.png"),
    }
    plot_convergence(
        runs_by_variant,
        paths["convergence"],
        f"Validation AUC per step, {preset.upper()}{suffix}",
    )
    attention = None
    adrec_variant = next(
        (v for v in variants if VARIANTS[v][0] == "adrec"), None
    )
    if adrec_variant is not None:
        paths["attention"] = str(output / "attention_maps.png")
        val_features = {
            k: v[:attention_samples] for k, v in loaded["val"][0].items()
        }
        attention = plot_attention_maps(
            models[adrec_variant],
            val_features,
            loaded["feature_names"],
            paths["attention"],
            f"{adrec_variant} attention, mean of {attention_samples} "
            f"validation samples{suffix}",
        )
    elapsed = time.perf_counter() - start
    header = [
        f"# adrec compare: {preset.upper()}{suffix}",
        "",
        f"{train_rows:,} training rows, {val_rows:,} validation rows; "
        f"{seeds} seed(s); batch {batch}; evaluation every {eval_every} "
        f"steps; target AUC {target_auc}; total {elapsed:.0f} s.",
        "",
    ]
    table = markdown_table(rows, target_auc, source)
    pathlib.Path(paths["markdown"]).write_text("\n".join(header) + table + "\n")
    result = {
        "synthetic": source["synthetic"],
        "source": source,
        "preset": base,
        "target_auc": target_auc,
        "eval_every": eval_every,
        "train_rows": train_rows,
        "val_rows": val_rows,
        "rows": rows,
        "runs": [r for runs in runs_by_variant.values() for r in runs],
        "attention": attention,
        "seconds": elapsed,
        "paths": paths,
    }
    pathlib.Path(paths["json"]).write_text(
        json.dumps(result, indent=2, default=str)
    )
    _log(verbose, "\n" + table)
    return result
