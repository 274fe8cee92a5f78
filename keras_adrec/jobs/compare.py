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

import keras
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.jobs import compare_report
from keras_adrec.models.presets import get_preset
from keras_adrec.training.build import build_ranking_model
from keras_adrec.training.convergence_logger import ConvergenceLogger

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


def variant_fields(variant, preset="rm1", overrides=None, batch_size=None):
    """Preset fields of one `VARIANTS` entry (interaction and changes).

    Args:
        variant: a key of `VARIANTS`.
        preset: preset name.
        overrides: dict of preset fields to replace first.
        batch_size: int or None, replacing the preset's.

    Returns:
        dict of preset fields.
    """
    if variant not in VARIANTS:
        raise ValueError(
            f"Unknown variant {variant!r}. Choose from {', '.join(VARIANTS)}."
        )
    interaction, changes, _ = VARIANTS[variant]
    fields = get_preset(preset, **(overrides or {}))
    changes = dict(changes)
    if changes.get("mask_thresholds") == "fixed":
        changes["mask_thresholds"] = [FIXED_THRESHOLD] * fields["num_heads"]
    fields.update(changes)
    fields["interaction"] = interaction
    if batch_size:
        fields["batch_size"] = int(batch_size)
    return fields


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
    """Read, split and preprocess once, into memory.

    Args:
        data: `"KIND:PATH"`, or None for the embedded synthetic data.
        synthetic_rows: int, synthetic rows in all (default
            `DEFAULT_SYNTHETIC_ROWS`).
        days: int, synthetic days (the last one validates).
        shift_strength: float, the synthetic day-to-day drift.
        val_fraction: float, validation share of `data` (time order).
        min_frequency, max_index_range: the preprocessing's.
        seed: int, the generator's seed.

    Returns:
        A `keras_adrec.data.RankingData` held in memory.
    """
    common = {
        "val_fraction": val_fraction,
        "min_frequency": min_frequency,
        "max_index_range": max_index_range,
        "in_memory": True,
    }
    if data:
        return adrec_data.load_ranking_data(data, **common)
    rows = synthetic_rows or DEFAULT_SYNTHETIC_ROWS
    generator = adrec_data.SyntheticCriteo(
        rows_per_day=max(1, rows // days),
        num_days=days,
        seed=seed,
        shift_strength=shift_strength,
    )
    return adrec_data.load_ranking_data(synthetic=generator, **common)


def in_memory_datasets(loaded, batch_size, val_batch_size=4096):
    """`(train, val)` `tf.data` pipelines over a `RankingData` in memory."""
    train = (
        tf.data.Dataset.from_tensor_slices(loaded.train)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val = (
        tf.data.Dataset.from_tensor_slices(loaded.val)
        .batch(val_batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    return train, val


def train_variant(
    loaded, fields, seed, eval_every=None, target_auc=None, curve_path=None
):
    """Train one variant with one seed on in-memory data.

    Args:
        loaded: a `RankingData` in memory.
        fields: preset fields (`variant_fields`).
        seed: int, weights and dropout seed.
        eval_every: int, steps between evaluations (and at the end).
        target_auc: float or None; training stops once reached.
        curve_path: optional CSV path for the convergence curve.

    Returns:
        `(model, summary)`: the `ConvergenceLogger` summary plus `curve`
        (step and val AUC of every evaluation).
    """
    keras.utils.set_random_seed(seed)
    train, val = in_memory_datasets(loaded, fields["batch_size"])
    model = build_ranking_model(
        fields, loaded.vocabulary_sizes, loaded.num_dense
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


def _log(verbose, message):
    if verbose:
        print(message, flush=True)


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
    source = loaded.source
    train_rows = len(loaded.train[1])
    val_rows = len(loaded.val[1])
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
        fields = variant_fields(variant, preset, overrides, batch_size)
        for seed in range(seeds):
            count += 1
            t0 = time.perf_counter()
            model, summary = train_variant(
                loaded,
                fields,
                seed,
                eval_every=eval_every,
                target_auc=target_auc,
                curve_path=str(output / "curves" / f"{variant}_seed{seed}.csv"),
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
    rows = [
        compare_report.aggregate(v, VARIANTS[v][2], runs)
        for v, runs in runs_by_variant.items()
    ]
    suffix = " — SYNTHETIC data" if source["synthetic"] else ""
    paths = {
        "markdown": str(output / "results.md"),
        "json": str(output / "results.json"),
        "convergence": str(output / "convergence.png"),
    }
    compare_report.plot_convergence(
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
            k: v[:attention_samples] for k, v in loaded.val[0].items()
        }
        attention = compare_report.plot_attention_maps(
            models[adrec_variant],
            val_features,
            loaded.feature_names,
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
    table = compare_report.markdown_table(rows, target_auc, source)
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
