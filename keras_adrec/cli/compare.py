"""`adrec compare`: every interaction on the same data, side by side."""

from keras_adrec import data as adrec_data
from keras_adrec.cli.arguments import UsageError
from keras_adrec.cli.arguments import apply_flags
from keras_adrec.cli.arguments import check_data
from keras_adrec.cli.arguments import check_model_fields
from keras_adrec.cli.arguments import check_output_dir
from keras_adrec.cli.arguments import check_preset
from keras_adrec.cli.arguments import fraction
from keras_adrec.cli.arguments import integer
from keras_adrec.cli.arguments import make_settings
from keras_adrec.cli.arguments import parse_set
from keras_adrec.cli.arguments import positive_int
from keras_adrec.jobs.compare import ABLATIONS
from keras_adrec.jobs.compare import BASE_VARIANTS
from keras_adrec.jobs.compare import DEFAULT_DAYS
from keras_adrec.jobs.compare import DEFAULT_SHIFT_STRENGTH
from keras_adrec.jobs.compare import DEFAULT_SYNTHETIC_ROWS
from keras_adrec.jobs.compare import VARIANTS
from keras_adrec.jobs.compare import CompareSettings
from keras_adrec.jobs.compare import compare
from keras_adrec.jobs.compare import variant_fields
from keras_adrec.models import SequentialPreset


def add_parser(subparsers):
    p = subparsers.add_parser(
        "compare",
        help="train every interaction on the same data and compare",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", default=None, help="KIND:PATH")
    source.add_argument(
        "--synthetic",
        type=positive_int,
        default=None,
        metavar="ROWS",
        help=f"synthetic rows in all (default {DEFAULT_SYNTHETIC_ROWS})",
    )
    p.add_argument(
        "--days",
        type=positive_int,
        default=None,
        help=f"synthetic days; the last validates (default {DEFAULT_DAYS})",
    )
    p.add_argument(
        "--shift-strength",
        type=float,
        default=None,
        help=f"synthetic day-to-day drift (default {DEFAULT_SHIFT_STRENGTH:g})",
    )
    p.add_argument("--preset", default="rm1")
    p.add_argument("--interactions", default=",".join(BASE_VARIANTS))
    p.add_argument("--ablations", action="store_true")
    p.add_argument("--seeds", type=positive_int, default=3)
    p.add_argument("--target-auc", type=float, default=None)
    p.add_argument("--eval-every", type=positive_int, default=None)
    p.add_argument("--val-fraction", type=fraction, default=0.2)
    # Checked as the preset's field, as `--set batch_size=N` is.
    p.add_argument("--batch-size", type=integer, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--output", default="adrec-compare")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier comparison in --output (default: refuse)",
    )
    p.add_argument("--quiet", action="store_true")
    return p


def check(args):
    """Validate `args`; return the job's `CompareSettings`."""
    variants = [v.strip() for v in args.interactions.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UsageError(
            f"unknown interaction(s) {', '.join(unknown)}; choose from "
            f"{', '.join(VARIANTS)}"
        )
    if args.ablations:
        variants += [v for v in ABLATIONS if v not in variants]
    overrides = parse_set(args.set)
    fields = check_preset(args.preset, overrides)
    if isinstance(fields, SequentialPreset):
        raise UsageError(
            f"adrec compare runs the ranking presets rm1-rm3, not {args.preset}"
        )
    apply_flags(fields, {"--batch-size": ("batch_size", args.batch_size)})
    inputs = []
    schema = adrec_data.schema_for("criteo")
    if args.data:
        kind, inputs = check_data(args.data, task="ranking")
        schema = adrec_data.schema_for(kind)
    for variant in variants:
        check_model_fields(variant_fields(variant, fields), schema)
    check_output_dir(
        args.output, overwrite=args.overwrite, inputs=inputs, kind="compare"
    )
    days = DEFAULT_DAYS if args.days is None else args.days
    if days < 2:
        raise UsageError("--days must be at least 2 (train days + 1 val day)")
    if args.synthetic is not None and args.synthetic < 10 * days:
        raise UsageError("--synthetic needs at least 10 rows per day")
    if args.shift_strength is not None and args.shift_strength < 0:
        raise UsageError(
            f"--shift-strength must be 0 or more, got {args.shift_strength}"
        )
    if args.target_auc is not None and not 0.0 < args.target_auc <= 1.0:
        raise UsageError(
            f"--target-auc must lie in (0, 1], got {args.target_auc}"
        )
    return make_settings(
        CompareSettings,
        data=args.data,
        synthetic_rows=args.synthetic,
        days=args.days,
        shift_strength=args.shift_strength,
        preset=fields,
        variants=variants,
        seeds=args.seeds,
        target_auc=args.target_auc,
        eval_every=args.eval_every,
        val_fraction=args.val_fraction,
        batch_size=args.batch_size,
        # `--set learning_rate=...` replaces the synthetic data's default
        # rate too, not only the preset's.
        learning_rate=(
            fields.learning_rate if "learning_rate" in overrides else None
        ),
        output=args.output,
        overwrite=args.overwrite,
        verbose=not args.quiet,
    )


# How `adrec compare` names each output it lists.
OUTPUT_LABELS = {
    "markdown": "Results",
    "json": "Results (JSON)",
    "convergence": "Convergence plot",
    "shift": "Shift plot",
    "attention": "Attention maps",
    "diagnostics": "Mask diagnostics",
    "curves": "Convergence curves (one CSV per run)",
}


def run(args):
    result = compare(check(args))
    for key, path in result["paths"].items():
        print(f"{OUTPUT_LABELS[key]}: {path}")
