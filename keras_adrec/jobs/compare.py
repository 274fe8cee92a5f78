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

The job is `compare(CompareSettings(...))`; the pieces live beside it:
`compare_variants` (what is compared), `compare_runs` (the data and one
run), `compare_progress` (the time left) and `compare_report` (what is
written).

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

import dataclasses
import json
import pathlib
import time

from keras_adrec import data as adrec_data
from keras_adrec.jobs import compare_report
from keras_adrec.jobs import settings as checks
from keras_adrec.jobs.compare_progress import clock
from keras_adrec.jobs.compare_progress import relative_costs
from keras_adrec.jobs.compare_progress import time_left
from keras_adrec.jobs.compare_runs import DEFAULT_DAYS
from keras_adrec.jobs.compare_runs import DEFAULT_EVALUATIONS
from keras_adrec.jobs.compare_runs import DEFAULT_HOLDOUT_FRACTION
from keras_adrec.jobs.compare_runs import DEFAULT_SHIFT_STRENGTH
from keras_adrec.jobs.compare_runs import DEFAULT_SYNTHETIC
from keras_adrec.jobs.compare_runs import DEFAULT_SYNTHETIC_BATCH_SIZE
from keras_adrec.jobs.compare_runs import DEFAULT_SYNTHETIC_LEARNING_RATE
from keras_adrec.jobs.compare_runs import DEFAULT_SYNTHETIC_ROWS
from keras_adrec.jobs.compare_runs import TARGET_FRACTION
from keras_adrec.jobs.compare_runs import automatic_target
from keras_adrec.jobs.compare_runs import in_memory_datasets
from keras_adrec.jobs.compare_runs import load_comparison_data
from keras_adrec.jobs.compare_runs import steps_to_target
from keras_adrec.jobs.compare_runs import train_variant
from keras_adrec.jobs.compare_variants import ABLATIONS
from keras_adrec.jobs.compare_variants import BASE_VARIANTS
from keras_adrec.jobs.compare_variants import FIXED_THRESHOLD
from keras_adrec.jobs.compare_variants import VARIANTS
from keras_adrec.jobs.compare_variants import variant_fields
from keras_adrec.models.presets import RankingPreset
from keras_adrec.models.presets import get_preset
from keras_adrec.training.model_directory import staged_output

# What `compare` writes besides the curves, key -> file name.
OUTPUT_NAMES = {
    "markdown": "results.md",
    "json": "results.json",
    "convergence": "convergence.png",
    "shift": "shift.png",
    "attention": "attention_maps.png",
    "diagnostics": "mask_diagnostics.md",
    "curves": "curves",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompareSettings:
    """Everything `compare` needs, checked on creation.

    Args:
        data: str or None. `"KIND:PATH"`, or None for the embedded
            synthetic data.
        synthetic_rows: int or None. Synthetic rows in all (training days
            plus the validation day); defaults to `DEFAULT_SYNTHETIC_ROWS`.
        days: int >= 2 or None. Synthetic days, the last validates;
            defaults to `DEFAULT_DAYS`.
        shift_strength: float >= 0 or None. The synthetic day-to-day
            drift; defaults to `DEFAULT_SHIFT_STRENGTH`.
        preset: `RankingPreset`. The model every variant changes
            (`get_preset("rm1", ...)`). Defaults to RM1.
        variants: tuple of `VARIANTS` keys. Defaults to `BASE_VARIANTS`.
        seeds: int > 0. Seeds 0..seeds-1 per variant. Defaults to `3`.
        target_auc: float in (0, 1] or None (automatic; see the module
            docstring).
        eval_every: int > 0 or None (`DEFAULT_EVALUATIONS` evaluations).
        val_fraction: float in (0, 1). Validation share of `data`.
        batch_size: int > 0 or None. Every run's batch size: the preset's,
            or on the synthetic data `DEFAULT_SYNTHETIC_BATCH_SIZE`.
        learning_rate: float > 0 or None. Every run's learning rate: the
            preset's, or on the synthetic data
            `DEFAULT_SYNTHETIC_LEARNING_RATE`.
        output: str or path. The output directory (written beside it and
            renamed into place when the comparison ends).
        overwrite: bool. Replace an earlier comparison in `output`.
        verbose: bool. One line per run with the time left.
        attention_samples: int > 0. Validation rows of the attention maps.

    Example:

    ```python
    from keras_adrec.jobs.compare import CompareSettings, compare

    result = compare(CompareSettings(
        variants=("dot", "adrec"), seeds=1, output="cmp",
        preset=keras_adrec.models.get_preset("rm1", bottom_units=[8])))
    print(result["paths"])
    ```
    """

    data: str | None = None
    synthetic_rows: int | None = None
    days: int | None = None
    shift_strength: float | None = None
    preset: RankingPreset = dataclasses.field(
        default_factory=lambda: get_preset("rm1")
    )
    variants: tuple = BASE_VARIANTS
    seeds: int = 3
    target_auc: float | None = None
    eval_every: int | None = None
    val_fraction: float = 0.2
    batch_size: int | None = None
    learning_rate: float | None = None
    output: object = "adrec-compare"
    overwrite: bool = False
    verbose: bool = True
    attention_samples: int = 8

    def __post_init__(self):
        object.__setattr__(self, "variants", tuple(self.variants))
        self.validate()

    def validate(self):
        """Check every setting; raise naming the first bad one."""
        if type(self.preset) is not RankingPreset:
            raise ValueError(
                "adrec compare runs the ranking presets rm1-rm3, not "
                f"{getattr(self.preset, 'name', self.preset)}"
            )
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ValueError(
                f"`variants` must name some of {', '.join(VARIANTS)}. "
                f"Received: variants={list(self.variants)}"
            )
        if self.data is not None and self.synthetic_rows is not None:
            raise ValueError("Give `data` or `synthetic_rows`, not both.")
        checks.check_int("synthetic_rows", self.synthetic_rows, 1, True)
        checks.check_int("days", self.days, 2, optional=True)
        days = DEFAULT_DAYS if self.days is None else self.days
        if self.synthetic_rows is not None and self.synthetic_rows < 10 * days:
            raise ValueError(
                "`synthetic_rows` needs at least 10 rows per day. Received: "
                f"synthetic_rows={self.synthetic_rows} for {days} days"
            )
        if self.shift_strength is not None and not self.shift_strength >= 0:
            raise ValueError(
                "`shift_strength` must be 0 or more. Received: "
                f"shift_strength={self.shift_strength}"
            )
        checks.check_int("seeds", self.seeds, 1)
        checks.check_fraction(
            "target_auc", self.target_auc, closed_right=True, optional=True
        )
        checks.check_int("eval_every", self.eval_every, 1, optional=True)
        checks.check_fraction("val_fraction", self.val_fraction)
        checks.check_int("batch_size", self.batch_size, 1, optional=True)
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(
                "`learning_rate` must be positive. Received: "
                f"learning_rate={self.learning_rate}"
            )
        checks.check_int("attention_samples", self.attention_samples, 1)


def compare(settings):
    """Train each variant for each seed on the same data and report.

    Args:
        settings: a `CompareSettings`.

    Returns:
        dict with `rows` (aggregated table rows), `runs` (per-run
        summaries), `target_auc`, `source` and `paths` of every file and
        folder written (`OUTPUT_NAMES` keys).
    """
    output = pathlib.Path(settings.output)
    inputs = (
        adrec_data.parse_data_spec(settings.data)[1] if settings.data else []
    )
    with staged_output(
        output, overwrite=settings.overwrite, kind="compare", inputs=inputs
    ) as staging:
        return _compare(staging, output, settings)


def _log(verbose, message):
    if verbose:
        print(message, flush=True)


def _compare(staging, output, settings):
    start = time.perf_counter()
    verbose = settings.verbose
    (staging / OUTPUT_NAMES["curves"]).mkdir(parents=True, exist_ok=True)
    base = settings.preset
    _log(verbose, "Preparing data (read, split and preprocess once)...")
    loaded = load_comparison_data(
        data=settings.data,
        synthetic_rows=settings.synthetic_rows,
        days=settings.days,
        shift_strength=settings.shift_strength,
        val_fraction=settings.val_fraction,
        min_frequency=base.min_frequency,
        max_index_range=base.max_index_range,
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
        + f"; {source['split']}. ({clock(time.perf_counter() - start)})",
    )
    batch, learning_rate = _batch_and_rate(settings, source)
    steps_per_epoch = -(-train_rows // batch)
    eval_every = settings.eval_every or max(
        1, steps_per_epoch * base.epochs // DEFAULT_EVALUATIONS
    )
    variants = list(settings.variants)
    seeds = settings.seeds
    costs = relative_costs({v: VARIANTS[v][0] for v in variants}, batch)
    runs_by_variant = {v: [] for v in variants}
    models = {}
    timed = []
    total = len(variants) * seeds
    train_start = time.perf_counter()
    # Seeds outside, variants inside: after the first seed every variant's
    # cost is known, so the time left is estimated well.
    for seed in range(seeds):
        for variant in variants:
            fields = variant_fields(variant, base, batch_size=batch).replace(
                learning_rate=learning_rate
            )
            t0 = time.perf_counter()
            model, summary = train_variant(
                loaded,
                fields,
                seed,
                eval_every=eval_every,
                curve_path=str(
                    staging
                    / OUTPUT_NAMES["curves"]
                    / f"{variant}_seed{seed}.csv"
                ),
            )
            seconds = time.perf_counter() - t0
            timed.append((variant, seconds))
            summary.update(
                {"variant": variant, "seed": seed, "run_seconds": seconds}
            )
            runs_by_variant[variant].append(summary)
            if seed == 0:
                models[variant] = model
            left = time_left(timed, variants, seeds, costs)
            holdout = (
                f" (training distribution {summary['holdout_auc']:.4f})"
                if "holdout_auc" in summary
                else ""
            )
            _log(
                verbose,
                f"[{len(timed)}/{total}] {variant} seed {seed}: val AUC "
                f"{summary['auc']:.4f}{holdout}, {seconds:.0f} s; elapsed "
                f"{clock(time.perf_counter() - start)}, about "
                f"{clock(left)} left",
            )
    train_seconds = time.perf_counter() - train_start
    automatic = settings.target_auc is None
    target = (
        automatic_target(runs_by_variant)
        if automatic
        else float(settings.target_auc)
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
    written = ["markdown", "json", "convergence", "curves"]
    compare_report.plot_convergence(
        runs_by_variant,
        staging / OUTPUT_NAMES["convergence"],
        f"Validation AUC, {base.name.upper()}{suffix}",
        target=target,
    )
    if holdout_rows:
        written.append("shift")
        compare_report.plot_shift(
            rows,
            staging / OUTPUT_NAMES["shift"],
            f"Training distribution against the shifted day{suffix}",
        )
    attention = None
    diagnostics = None
    adrec_variant = next(
        (v for v in variants if VARIANTS[v][0] == "adrec"), None
    )
    if adrec_variant is not None:
        written += ["attention", "diagnostics"]
        count = settings.attention_samples
        val_features = {k: v[:count] for k, v in loaded.val[0].items()}
        attention = compare_report.plot_attention_maps(
            models[adrec_variant],
            val_features,
            loaded.feature_names,
            staging / OUTPUT_NAMES["attention"],
            f"{adrec_variant} attention, mean of {count} validation "
            f"samples{suffix}",
        )
        diagnostics = compare_report.head_diagnostics(
            loaded,
            models[adrec_variant],
            variant_fields(adrec_variant, base, batch_size=batch),
        )
        (staging / OUTPUT_NAMES["diagnostics"]).write_text(
            "\n".join(diagnostics["markdown"]) + "\n"
        )
    elapsed = time.perf_counter() - start
    table = compare_report.markdown_table(rows, source, holdout_rows > 0)
    header = [
        f"# adrec compare: {base.name.upper()}{suffix}",
        "",
        f"{train_rows:,} training rows, {val_rows:,} validation rows"
        + (f", {holdout_rows:,} held-out rows" if holdout_rows else "")
        + f"; {seeds} seed(s); batch {batch}, learning rate "
        f"{learning_rate:.4g}; evaluation every {eval_every} steps. Wall "
        f"time {elapsed:.0f} s in all ({train_seconds:.0f} s of runs).",
        "",
        headline,
        "",
    ]
    lines = header + [table]
    if diagnostics is not None:
        lines += [""] + diagnostics["markdown"]
    (staging / OUTPUT_NAMES["markdown"]).write_text("\n".join(lines) + "\n")
    paths = {key: str(output / OUTPUT_NAMES[key]) for key in written}
    result = {
        "synthetic": synthetic,
        "source": source,
        "preset": base.to_dict(),
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
    (staging / OUTPUT_NAMES["json"]).write_text(
        json.dumps(result, indent=2, default=str)
    )
    _log(verbose, "\n" + "\n".join(header[2:] + [table]))
    return result


def _batch_and_rate(settings, source):
    """The batch size and learning rate of every run: the settings', else
    the default synthetic data's on it, else the preset's."""
    batch = settings.batch_size or settings.preset.batch_size
    rate = settings.learning_rate or settings.preset.learning_rate
    if source["synthetic"]:
        batch = settings.batch_size or DEFAULT_SYNTHETIC_BATCH_SIZE
        rate = settings.learning_rate or DEFAULT_SYNTHETIC_LEARNING_RATE
    return batch, rate


__all__ = [
    "ABLATIONS",
    "BASE_VARIANTS",
    "CompareSettings",
    "DEFAULT_DAYS",
    "DEFAULT_HOLDOUT_FRACTION",
    "DEFAULT_SHIFT_STRENGTH",
    "DEFAULT_SYNTHETIC",
    "DEFAULT_SYNTHETIC_ROWS",
    "FIXED_THRESHOLD",
    "OUTPUT_NAMES",
    "TARGET_FRACTION",
    "VARIANTS",
    "automatic_target",
    "compare",
    "in_memory_datasets",
    "load_comparison_data",
    "steps_to_target",
    "train_variant",
    "variant_fields",
]
