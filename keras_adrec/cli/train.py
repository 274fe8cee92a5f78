"""`adrec train`: train a ranking (Criteo, Avazu) or sequential (Taobao)
model and write its model directory."""

import json
import sys

from keras_adrec import data as adrec_data
from keras_adrec.cli.arguments import UsageError
from keras_adrec.cli.arguments import apply_flags
from keras_adrec.cli.arguments import check_data
from keras_adrec.cli.arguments import check_model_fields
from keras_adrec.cli.arguments import check_output_dir
from keras_adrec.cli.arguments import check_preset
from keras_adrec.cli.arguments import check_strategy
from keras_adrec.cli.arguments import check_val_data
from keras_adrec.cli.arguments import fraction
from keras_adrec.cli.arguments import integer
from keras_adrec.cli.arguments import make_settings
from keras_adrec.cli.arguments import non_negative_int
from keras_adrec.cli.arguments import parse_set
from keras_adrec.cli.arguments import positive_int
from keras_adrec.jobs.train_ranking import TrainRankingSettings
from keras_adrec.jobs.train_ranking import train_ranking
from keras_adrec.jobs.train_sequential import TrainSequentialSettings
from keras_adrec.jobs.train_sequential import train_sequential
from keras_adrec.models import SequentialPreset
from keras_adrec.models import interaction_names
from keras_adrec.training.build import resolve_fields
from keras_adrec.training.distribution import STRATEGIES

DEFAULT_PRESETS = {"ranking": "rm1", "sequential": "rm4"}


def add_parser(subparsers):
    p = subparsers.add_parser("train", help="train a model")
    p.add_argument(
        "--data",
        required=True,
        help="KIND:PATH, e.g. criteo:train.txt (kinds: "
        f"{', '.join(adrec_data.kind_names())})",
    )
    p.add_argument(
        "--preset",
        default=None,
        help="rm1-rm3 (ranking; default rm1), rm4-rm7 (taobao; default rm4)",
    )
    p.add_argument("--interaction", default=None)
    # Checked as the preset's fields, as `--set epochs=N` is.
    p.add_argument("--epochs", type=integer, default=None)
    p.add_argument("--batch-size", type=integer, default=None)
    p.add_argument("--output", required=True)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished run in --output (default: refuse)",
    )
    p.add_argument(
        "--schema",
        default=None,
        metavar="FILE",
        help="JSON file naming the label, dense, categorical, multi_hot and "
        "group columns of parquet:/csv: data (see docs/schema.md)",
    )
    p.add_argument("--val-data", default=None)
    p.add_argument("--val-fraction", type=fraction, default=0.2)
    p.add_argument("--split", choices=("time", "random"), default="time")
    p.add_argument("--target-auc", type=float, default=None)
    p.add_argument("--eval-every", type=positive_int, default=None)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--on-bad-lines", choices=("error", "skip"), default="error")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset field (repeatable)",
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="default: one device; mirrored: every local GPU; "
        "multiworker: the hosts in TF_CONFIG, one process per host started "
        "with the same command (worker 0 writes --output). --batch-size "
        "(or the preset's batch_size) is GLOBAL: each of the N replicas "
        "gets batch_size/N rows per step. Tables too big for one device: "
        "hash with --set max_index_range=R",
    )
    p.add_argument(
        "--scale-lr",
        action="store_true",
        help="scale the learning rate linearly with the global batch: "
        "lr * batch_size / preset batch_size (default: lr as given, right "
        "for an unchanged global batch on any number of replicas)",
    )
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="write a checkpoint every --checkpoint-every steps; rerunning "
        "the same command resumes from the latest one",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=100,
        metavar="STEPS",
        help="steps between checkpoints (default 100)",
    )
    p.add_argument(
        "--mixed-precision",
        choices=("off", "float16", "bfloat16"),
        default="off",
        help="float16 uses dynamic loss scaling (default off)",
    )
    return p


def check(args):
    """Validate `args` before any work; return `(task, settings)`: the
    job's settings dataclass, its preset checked field by field."""
    kind, inputs = check_data(args.data)
    task = adrec_data.data_kind(kind).task
    if args.val_data:
        inputs += check_val_data(args.val_data, kind)
    check_strategy(args.strategy)
    table = _check_schema(kind, args.schema)
    preset = args.preset or DEFAULT_PRESETS[task]
    overrides = parse_set(args.set)
    fields = check_preset(preset, overrides)
    sequential_preset = isinstance(fields, SequentialPreset)
    if task == "sequential" and not sequential_preset:
        raise UsageError(
            f"preset {preset} is not sequential; use rm4-rm7 with {kind} data"
        )
    if task == "ranking" and sequential_preset:
        raise UsageError(
            f"preset {preset} is sequential; use it with taobao data"
        )
    if args.interaction is not None and (
        args.interaction.lower() not in interaction_names()
    ):
        raise UsageError(
            f"unknown interaction {args.interaction!r}; choose one of "
            f"{', '.join(interaction_names())}"
        )
    if args.target_auc is not None and not 0.0 < args.target_auc <= 1.0:
        raise UsageError(
            f"--target-auc must lie in (0, 1], got {args.target_auc}"
        )
    interaction = None if args.interaction is None else args.interaction.lower()
    # Each flag through the preset's checks, so an error names the flag;
    # then the one place that applies them (and --scale-lr).
    apply_flags(
        fields,
        {
            "--interaction": ("interaction", interaction),
            "--batch-size": ("batch_size", args.batch_size),
            "--epochs": ("epochs", args.epochs),
        },
    )
    fields = resolve_fields(
        preset,
        overrides,
        interaction=interaction,
        batch_size=args.batch_size,
        epochs=args.epochs,
        scale_lr=args.scale_lr and task == "ranking",
    )
    if args.strategy != "multiworker":
        # Building the tiny model starts TensorFlow's runtime, after which
        # MultiWorkerMirroredStrategy can no longer configure its
        # collectives: there the fields are checked when the model builds.
        schema = adrec_data.schema_for(kind) if task == "ranking" else None
        if table is not None:
            schema = table.dataset_schema()
        check_model_fields(fields, schema)
    inputs += [args.checkpoint_dir] if args.checkpoint_dir else []
    check_output_dir(args.output, overwrite=args.overwrite, inputs=inputs)
    if task == "sequential":
        unsupported = {
            "--val-data": args.val_data,
            "--checkpoint-dir": args.checkpoint_dir,
            "--strategy": args.strategy != "default",
            "--mixed-precision": args.mixed_precision != "off",
        }
        named = [flag for flag, used in unsupported.items() if used]
        if named:
            raise UsageError(
                f"{', '.join(named)} not supported with {kind} data yet"
            )
        _, paths = adrec_data.parse_data_spec(args.data)
        return task, make_settings(
            TrainSequentialSettings,
            path=paths[0],
            output=args.output,
            preset=fields,
            target_auc=args.target_auc,
            eval_every=args.eval_every,
            seed=args.seed,
            verbose=not args.quiet,
            on_bad_lines=args.on_bad_lines,
            overwrite=args.overwrite,
        )
    return task, make_settings(
        TrainRankingSettings,
        data=args.data,
        output=args.output,
        preset=fields,
        val_data=args.val_data,
        val_fraction=args.val_fraction,
        split_mode=args.split,
        on_bad_lines=args.on_bad_lines,
        target_auc=args.target_auc,
        eval_every=args.eval_every,
        seed=args.seed,
        verbose=not args.quiet,
        strategy=args.strategy,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
        mixed_precision=args.mixed_precision,
        overwrite=args.overwrite,
        schema=args.schema,
    )


def _check_schema(kind, schema):
    """The `TableSchema` of `--schema` (None without it); `UsageError`
    when `--schema` and the data kind do not go together."""
    tables = ("parquet", "csv")
    if schema is None:
        if kind in tables:
            raise UsageError(
                f"--data {kind}:... needs --schema FILE naming its columns "
                "(see docs/schema.md)"
            )
        return None
    if kind not in tables:
        raise UsageError(
            f"--schema describes parquet: or csv: data, not {kind} data"
        )
    # A bad file is a data error (exit 1), raised as `SchemaFileError`.
    return adrec_data.load_table_schema(schema)


def run(args):
    task, settings = check(args)
    if task == "sequential":
        _report(train_sequential(settings))
        return
    try:
        summary = train_ranking(settings)
    except FileExistsError as error:
        # --checkpoint-dir holds another run's checkpoints, or another run
        # is writing --output.
        raise UsageError(str(error)) from None
    _report(summary)


def _report(summary):
    """The metrics on stdout; a one-line warning for a model that did not
    learn (its validation predictions are all one value)."""
    print(json.dumps(summary))
    if summary.get("constant_predictions"):
        print(
            "adrec: warning: every validation prediction is the same value: "
            "the model did not learn (saturated or untrained); check the "
            "learning rate and the data",
            file=sys.stderr,
        )
    for warning in summary.get("warnings", ()):
        print(f"adrec: warning: {warning}", file=sys.stderr)
