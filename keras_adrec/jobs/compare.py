"""`adrec compare`: every interaction on the same data, side by side.

Each interaction (and, with `--ablations`, each Ad-Rec ablation of the
paper's appendix D) trains on the same rows, split and preprocessing, for
several seeds. The headline is the paper's convergence claim: how many
steps (and training seconds) each interaction needs to reach a target
validation AUC. The run writes to the output directory:

- `results.md` and `results.json`: per interaction, steps and training
  seconds to the target AUC, the final validation AUC on the shifted day
  and on rows of the training days' distribution (and their gap), logloss,
  training samples/s; mean ± sample std (ddof=1) over seeds;
- `convergence.png`: validation AUC against steps and against training
  seconds, one line per interaction, with the target;
- `shift.png`: each interaction's AUC on the training days' distribution
  and on the shifted validation day: which one loses least under shift;
- `attention_maps.png`: Ad-Rec's per-head attention before and after the
  threshold mask for a few validation samples, labelled by feature (like
  the paper's Figures 14-16);
- `mask_diagnostics.md`: per head, the mean kept keys, the share of query
  rows that keep a single key (hard attention) and the query/key kernel
  gradient norms, at initialisation and after training (also at the end
  of `results.md`);
- `curves/VARIANT_seedS.csv`: each run's convergence curve.

Without `--data` it runs on the embedded synthetic covariate-shift data
(`keras_adrec.data.SyntheticCriteo`, settings in `DEFAULT_SYNTHETIC`): the
first days train, the last day validates, so validation sees shifted data,
and rows held out from the training days measure the same-distribution
AUC. Everything made from it says "synthetic".

The target: `--target-auc`, or by default `0.5 + TARGET_FRACTION * (best
- 0.5)` with `best` the highest mean final validation AUC of the compared
interactions: 95% of the best lift over chance. Steps to target are read
off each run's curve (evaluations every `eval_every` steps), so every run
trains its whole budget and its curve can be plotted to the end.

Preprocessing runs once; the preprocessed rows are kept in memory and every
run reads them from there, so the comparison measures the models.
"""

import json
import math
import pathlib
import time

import keras
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.jobs import compare_report
from keras_adrec.models.head_diagnostics import as_json
from keras_adrec.models.head_diagnostics import format_mask_diagnostics
from keras_adrec.models.head_diagnostics import mask_diagnostics
from keras_adrec.models.presets import get_preset
from keras_adrec.training.build import build_ranking_model
from keras_adrec.training.convergence_logger import ConvergenceLogger
from keras_adrec.training.metrics import evaluate_model
from keras_adrec.training.model_directory import staged_output

# The default comparison (`adrec compare` with no data): the one place its
# settings live. Chosen so that the whole run (5 interactions x 3 seeds)
# takes about 3 minutes on a quiet 2-core machine: measured 3:08 wall (221 s
# user + 14 s system CPU) with these settings, 4:19 with 12,000 rows a day
# and 16 evaluations. Measured with one seed while choosing: with Criteo's
# cardinalities scaled to 1/2000 and 90,000 rows at SGD 0.14 every curve
# still rose at its end (val AUC 0.56-0.59); SGD 0.5 made Ad-Rec diverge in
# 2 of 3 seeds, while at 0.3 it trains. The curves have not flattened at the
# end of the epoch: the last third of the steps still adds 10-15% of the
# final lift over chance (8-12% with 12,000 rows a day); flat curves need
# several times this budget (`--synthetic ROWS`).
# - cardinalities scaled to 1/100,000 of Criteo Kaggle's, floor 20 (largest
#   column 103 values): each value is seen hundreds of times in 45,000
#   rows, so the embeddings, which dominate the parameters, learn within
#   one epoch;
# - 6 days of 9,000 rows: days 0-4 train (45,000 rows, one epoch), day 5
#   validates; 900 further rows of each training day (10%) are held out to
#   measure the AUC on the training distribution;
# - the generator's default drift (shift strength 1): the training
#   distribution scores about 0.005-0.01 AUC above the shifted day;
# - batch 256 and SGD learning rate 0.3 (176 steps, 12 evaluations, one
#   every 14 steps): at RM1's 0.1 the curves rose more slowly still, at 0.5
#   Ad-Rec diverged in two of three seeds.
DEFAULT_SYNTHETIC = {
    "rows_per_day": 9_000,
    "num_days": 6,
    "scale": 1e-5,
    "min_cardinality": 20,
    "shift_strength": 1.0,
}
DEFAULT_SYNTHETIC_ROWS = (
    DEFAULT_SYNTHETIC["rows_per_day"] * DEFAULT_SYNTHETIC["num_days"]
)
DEFAULT_DAYS = DEFAULT_SYNTHETIC["num_days"]
DEFAULT_SHIFT_STRENGTH = DEFAULT_SYNTHETIC["shift_strength"]
DEFAULT_HOLDOUT_FRACTION = 0.1
DEFAULT_SYNTHETIC_BATCH_SIZE = 256
DEFAULT_SYNTHETIC_LEARNING_RATE = 0.3
DEFAULT_EVALUATIONS = 12
TARGET_FRACTION = 0.95

# name -> (interaction, preset overrides, what it is)
VARIANTS = {
    "dot": ("dot", {}, "DLRM pairwise dot products"),
    "fm": ("fm", {}, "DeepFM factorization machine"),
    "autoint": ("autoint", {}, "AutoInt self-attention"),
    "dcnv2": ("dcnv2", {}, "DCN-v2 cross network"),
    "adrec": (
        "adrec",
        {},
        "Ad-Rec, per-head masks (the preset's rule and warm-up)",
    ),
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
    days=None,
    shift_strength=None,
    val_fraction=0.2,
    min_frequency=1,
    max_index_range=None,
    seed=0,
    holdout_fraction=DEFAULT_HOLDOUT_FRACTION,
):
    """Read, split and preprocess once, into memory.

    Args:
        data: `"KIND:PATH"`, or None for the embedded synthetic data.
        synthetic_rows: int, synthetic rows in all (training days plus the
            validation day; default `DEFAULT_SYNTHETIC_ROWS`).
        days: int, synthetic days (the last one validates; default
            `DEFAULT_DAYS`).
        shift_strength: float, the synthetic day-to-day drift (default
            `DEFAULT_SHIFT_STRENGTH`).
        val_fraction: float, validation share of `data` (time order).
        min_frequency, max_index_range: the preprocessing's.
        seed: int, the generator's seed.
        holdout_fraction: float, synthetic rows held out from each training
            day, as a share of its rows (same-distribution validation).

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
    settings = dict(DEFAULT_SYNTHETIC)
    days = int(days or settings["num_days"])
    rows = int(synthetic_rows or DEFAULT_SYNTHETIC_ROWS)
    settings.update(
        rows_per_day=max(1, rows // days),
        num_days=days,
        seed=seed,
    )
    if shift_strength is not None:
        settings["shift_strength"] = float(shift_strength)
    generator = adrec_data.SyntheticCriteo(**settings)
    holdout = int(settings["rows_per_day"] * holdout_fraction)
    return adrec_data.load_ranking_data(
        synthetic=generator, holdout_rows=holdout, **common
    )


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
        (step, val AUC and training seconds of every evaluation) and, when
        `loaded` has held-out rows, `holdout_auc` and `holdout_logloss`.
    """
    keras.utils.set_random_seed(seed)
    train, val = in_memory_datasets(loaded, fields["batch_size"])
    model = build_ranking_model(
        fields,
        loaded.vocabulary_sizes,
        loaded.num_dense,
        # Graph or XLA, whichever trains these steps faster (measured).
        jit_compile="fastest",
        steps=int(train.cardinality()) * fields["epochs"],
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
        {
            "step": r["step"],
            "val_auc": r["val_auc"],
            "train_seconds": r["train_seconds"],
        }
        for r in logger.rows
    ]
    if loaded.holdout is not None:
        holdout = tf.data.Dataset.from_tensor_slices(loaded.holdout).batch(4096)
        metrics = evaluate_model(model, holdout)
        summary["holdout_auc"] = metrics["auc"]
        summary["holdout_logloss"] = metrics["logloss"]
    return model, summary


def steps_to_target(curve, target):
    """`(step, train_seconds)` of the first evaluation at or above
    `target`, or `(None, None)`."""
    for point in curve:
        if point["val_auc"] is not None and point["val_auc"] >= target:
            return point["step"], point["train_seconds"]
    return None, None


def automatic_target(runs_by_variant, fraction=TARGET_FRACTION):
    """`0.5 + fraction * (best - 0.5)`: `best` the highest mean final
    validation AUC over the variants (runs that diverged left out)."""
    means = []
    for runs in runs_by_variant.values():
        finite = [
            r["auc"]
            for r in runs
            if r["logloss"] is not None and math.isfinite(r["logloss"])
        ]
        if finite:
            means.append(sum(finite) / len(finite))
    best = max(means, default=0.5)
    return 0.5 + fraction * (best - 0.5)


def _log(verbose, message):
    if verbose:
        print(message, flush=True)


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def compare(
    data=None,
    synthetic_rows=None,
    days=None,
    shift_strength=None,
    preset="rm1",
    variants=BASE_VARIANTS,
    seeds=3,
    target_auc=None,
    eval_every=None,
    val_fraction=0.2,
    batch_size=None,
    overrides=None,
    output="adrec-compare",
    overwrite=False,
    verbose=True,
    attention_samples=8,
):
    """Train each variant for each seed on the same data and report.

    Args:
        data: `"KIND:PATH"`, or None for the embedded synthetic data.
        synthetic_rows, days, shift_strength: the synthetic data (see
            `load_comparison_data`).
        preset: ranking preset name.
        variants: keys of `VARIANTS`.
        seeds: int, seeds 0..seeds-1 per variant.
        target_auc: float or None (automatic; see the module docstring).
        eval_every: int or None (`DEFAULT_EVALUATIONS` evaluations).
        val_fraction: float, validation share of `data`.
        batch_size: int or None (the preset's; on the default synthetic
            data `DEFAULT_SYNTHETIC_BATCH_SIZE` with
            `DEFAULT_SYNTHETIC_LEARNING_RATE`).
        overrides: dict of preset fields to replace.
        output: the output directory (written beside it and renamed into
            place when the comparison ends).
        overwrite: bool. Replace an earlier comparison in `output`.
        verbose: bool. One line per run with the time left.
        attention_samples: int, validation rows of the attention maps.

    Returns:
        dict with `rows` (aggregated table rows), `runs` (per-run
        summaries), `target_auc`, `source` and `paths` of the written
        files.
    """
    output = pathlib.Path(output)
    inputs = adrec_data.parse_data_spec(data)[1] if data else []
    with staged_output(
        output, overwrite=overwrite, kind="compare", inputs=inputs
    ) as staging:
        return _compare(
            staging,
            output,
            data=data,
            synthetic_rows=synthetic_rows,
            days=days,
            shift_strength=shift_strength,
            preset=preset,
            variants=list(variants),
            seeds=int(seeds),
            target_auc=target_auc,
            eval_every=eval_every,
            val_fraction=val_fraction,
            batch_size=batch_size,
            overrides=dict(overrides or {}),
            verbose=verbose,
            attention_samples=attention_samples,
        )


def _compare(staging, output, **kw):
    start = time.perf_counter()
    verbose = kw["verbose"]
    (staging / "curves").mkdir(parents=True, exist_ok=True)
    base = get_preset(kw["preset"], **kw["overrides"])
    _log(verbose, "Preparing data (read, split and preprocess once)...")
    loaded = load_comparison_data(
        data=kw["data"],
        synthetic_rows=kw["synthetic_rows"],
        days=kw["days"],
        shift_strength=kw["shift_strength"],
        val_fraction=kw["val_fraction"],
        min_frequency=base["min_frequency"],
        max_index_range=base["max_index_range"],
    )
    source = loaded.source
    train_rows = len(loaded.train[1])
    val_rows = len(loaded.val[1])
    holdout_rows = 0 if loaded.holdout is None else len(loaded.holdout[1])
    _log(
        verbose,
        f"Data ({source['kind']}): {train_rows:,} training rows, "
        f"{val_rows:,} validation rows"
        + (f", {holdout_rows:,} held-out rows" if holdout_rows else "")
        + f"; {source['split']}. ({_clock(time.perf_counter() - start)})",
    )
    batch, learning_rate = _batch_and_rate(
        kw["batch_size"], base, source, kw["overrides"]
    )
    steps_per_epoch = -(-train_rows // batch)
    eval_every = kw["eval_every"] or max(
        1, steps_per_epoch * base["epochs"] // DEFAULT_EVALUATIONS
    )
    runs_by_variant = {v: [] for v in kw["variants"]}
    models = {}
    seconds_by_variant = {}
    total = len(kw["variants"]) * kw["seeds"]
    done = 0
    train_start = time.perf_counter()
    # Seeds outside, variants inside: after the first seed every variant's
    # cost is known, so the time left is estimated well.
    for seed in range(kw["seeds"]):
        for variant in kw["variants"]:
            fields = variant_fields(
                variant, kw["preset"], kw["overrides"], batch
            )
            fields["learning_rate"] = learning_rate
            t0 = time.perf_counter()
            model, summary = train_variant(
                loaded,
                fields,
                seed,
                eval_every=eval_every,
                curve_path=str(
                    staging / "curves" / f"{variant}_seed{seed}.csv"
                ),
            )
            seconds = time.perf_counter() - t0
            seconds_by_variant.setdefault(variant, []).append(seconds)
            summary.update(
                {"variant": variant, "seed": seed, "run_seconds": seconds}
            )
            runs_by_variant[variant].append(summary)
            if seed == 0:
                models[variant] = model
            done += 1
            left = _time_left(seconds_by_variant, kw["variants"], kw["seeds"])
            holdout = (
                f" (training distribution {summary['holdout_auc']:.4f})"
                if "holdout_auc" in summary
                else ""
            )
            _log(
                verbose,
                f"[{done}/{total}] {variant} seed {seed}: val AUC "
                f"{summary['auc']:.4f}{holdout}, {seconds:.0f} s; elapsed "
                f"{_clock(time.perf_counter() - start)}, about "
                f"{_clock(left)} left",
            )
    train_seconds = time.perf_counter() - train_start
    automatic = kw["target_auc"] is None
    target = (
        automatic_target(runs_by_variant)
        if automatic
        else float(kw["target_auc"])
    )
    for runs in runs_by_variant.values():
        for run in runs:
            run["steps_to_target"], run["seconds_to_target"] = steps_to_target(
                run["curve"], target
            )
    rows = [
        compare_report.aggregate(v, VARIANTS[v][2], runs)
        for v, runs in runs_by_variant.items()
    ]
    headline = compare_report.headline(rows, target, automatic)
    synthetic = source["synthetic"]
    suffix = " — SYNTHETIC data" if synthetic else ""
    names = {
        "markdown": "results.md",
        "json": "results.json",
        "convergence": "convergence.png",
    }
    compare_report.plot_convergence(
        runs_by_variant,
        staging / names["convergence"],
        f"Validation AUC, {kw['preset'].upper()}{suffix}",
        target=target,
    )
    if holdout_rows:
        names["shift"] = "shift.png"
        compare_report.plot_shift(
            rows,
            staging / names["shift"],
            f"Training distribution against the shifted day{suffix}",
        )
    attention = None
    diagnostics = None
    adrec_variant = next(
        (v for v in kw["variants"] if VARIANTS[v][0] == "adrec"), None
    )
    if adrec_variant is not None:
        names["attention"] = "attention_maps.png"
        count = kw["attention_samples"]
        val_features = {k: v[:count] for k, v in loaded.val[0].items()}
        attention = compare_report.plot_attention_maps(
            models[adrec_variant],
            val_features,
            loaded.feature_names,
            staging / names["attention"],
            f"{adrec_variant} attention, mean of {count} validation "
            f"samples{suffix}",
        )
        names["diagnostics"] = "mask_diagnostics.md"
        diagnostics = _head_diagnostics(
            loaded,
            models[adrec_variant],
            variant_fields(adrec_variant, kw["preset"], kw["overrides"], batch),
        )
        (staging / names["diagnostics"]).write_text(
            "\n".join(diagnostics["markdown"]) + "\n"
        )
    elapsed = time.perf_counter() - start
    table = compare_report.markdown_table(rows, source, holdout_rows > 0)
    header = [
        f"# adrec compare: {kw['preset'].upper()}{suffix}",
        "",
        f"{train_rows:,} training rows, {val_rows:,} validation rows"
        + (f", {holdout_rows:,} held-out rows" if holdout_rows else "")
        + f"; {kw['seeds']} seed(s); batch {batch}, learning rate "
        f"{learning_rate:.4g}; evaluation every {eval_every} steps. Wall "
        f"time {elapsed:.0f} s in all ({train_seconds:.0f} s of runs).",
        "",
        headline,
        "",
    ]
    lines = header + [table]
    if diagnostics is not None:
        lines += [""] + diagnostics["markdown"]
    (staging / names["markdown"]).write_text("\n".join(lines) + "\n")
    paths = {key: str(output / name) for key, name in names.items()}
    result = {
        "synthetic": synthetic,
        "source": source,
        "preset": base,
        "batch_size": batch,
        "learning_rate": learning_rate,
        "target_auc": target,
        "target_automatic": automatic,
        "headline": headline,
        "eval_every": eval_every,
        "train_rows": train_rows,
        "val_rows": val_rows,
        "holdout_rows": holdout_rows,
        "rows": rows,
        "runs": [r for runs in runs_by_variant.values() for r in runs],
        "attention": attention,
        "mask_diagnostics": None
        if diagnostics is None
        else diagnostics["json"],
        "seconds": elapsed,
        "paths": paths,
    }
    (staging / names["json"]).write_text(
        json.dumps(result, indent=2, default=str)
    )
    _log(verbose, "\n" + "\n".join(header[2:] + [table]))
    return result


def _head_diagnostics(loaded, trained, fields, rows=1024):
    """Per-head kept keys, single-key rows and query/key gradient norms of
    the Ad-Rec interaction, at initialisation (seed 0) and after training,
    on the first `rows` validation rows."""
    features = {k: v[:rows] for k, v in loaded.val[0].items()}
    labels = loaded.val[1][:rows]
    keras.utils.set_random_seed(0)
    initial = build_ranking_model(
        fields, loaded.vocabulary_sizes, loaded.num_dense
    )
    reports = {
        "at initialisation": mask_diagnostics(initial, features, labels),
        "after training (seed 0)": mask_diagnostics(trained, features, labels),
    }
    markdown = [
        f"## Mask diagnostics ({fields['mask_rule']} rule, first {rows:,} "
        "validation rows)",
        "",
    ]
    for title, report in reports.items():
        markdown += format_mask_diagnostics(report, title=title) + [""]
    return {
        "markdown": markdown,
        "json": {title: as_json(r) for title, r in reports.items()},
    }


def _batch_and_rate(batch_size, base, source, overrides):
    """The batch size and learning rate of every run: the default
    synthetic data's unless given (`--batch-size`, `--set
    learning_rate=...`), else the preset's."""
    batch = int(batch_size) if batch_size else base["batch_size"]
    rate = base["learning_rate"]
    if source["synthetic"]:
        batch = int(batch_size or DEFAULT_SYNTHETIC_BATCH_SIZE)
        if "learning_rate" not in overrides:
            rate = DEFAULT_SYNTHETIC_LEARNING_RATE
    return batch, rate


def _time_left(seconds_by_variant, variants, seeds):
    """Seconds left: each variant's mean run time (the mean over all runs
    for variants not run yet) times its runs left."""
    measured = [s for runs in seconds_by_variant.values() for s in runs]
    fallback = sum(measured) / len(measured)
    left = 0.0
    for variant in variants:
        runs = seconds_by_variant.get(variant, [])
        mean = sum(runs) / len(runs) if runs else fallback
        left += mean * (seeds - len(runs))
    return left
