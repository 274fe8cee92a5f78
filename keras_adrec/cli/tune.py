"""`adrec tune`: search Ad-Rec hyperparameters on Criteo or Avazu data.

```
adrec tune --data criteo:train.txt --preset rm1 --tuner random \\
    --max-trials 20 --epochs 1 --output tune-rm1 \\
    --fix num_heads=2 --range dropout=0.01:0.1 \\
    --range 'mask_thresholds=["geometric", "fixed:0.01", "none"]'
```

- `--fix KEY=VALUE` pins a hyperparameter (VALUE read as JSON when it
  parses: `2`, `true`, `[0.1, 0.01]`; otherwise a string: `gelu`,
  `geometric:5`).
- `--range KEY=LO:HI` bounds a numeric hyperparameter; `--range KEY=[...]`
  (a JSON list) gives its exact choices.
- `--set KEY=VALUE` replaces a preset field that is not searched (e.g.
  `bottom_units=[64]`, `batch_size=256`), as in `adrec train`.

Rerunning the same command resumes the search
(`keras_adrec.tuning.search`). Needs the `tune` extra: without keras-tuner
the command exits 2 with one line naming it; every other command runs
without it.
"""

import importlib.util
import json

from keras_adrec.cli.arguments import UsageError
from keras_adrec.cli.arguments import check_data
from keras_adrec.cli.arguments import check_preset
from keras_adrec.cli.arguments import check_val_data
from keras_adrec.cli.arguments import fraction
from keras_adrec.cli.arguments import make_settings
from keras_adrec.cli.arguments import non_negative_int
from keras_adrec.cli.arguments import parse_set
from keras_adrec.cli.arguments import positive_int
from keras_adrec.training.run_writes import is_write_error
from keras_adrec.training.run_writes import write_error

# The keys of `keras_adrec.tuning.search.TUNERS`, named here so that the
# parser needs no keras-tuner.
TUNER_NAMES = ("random", "bayesian", "hyperband")
INSTALL_HINT = 'pip install "keras-adrec[tune]"'


def add_parser(subparsers):
    """Add the `tune` sub-command to an argparse `subparsers`."""
    p = subparsers.add_parser(
        "tune",
        help="search Ad-Rec hyperparameters (KerasTuner)",
        description=(
            "Search the Ad-Rec hyperparameters of the paper's study "
            "(num_layers, num_heads, ffn_dim, dropout, mask_thresholds, "
            "activation, norm_first, learning_rate), maximising the exact "
            "validation AUC. Rerunning the same command resumes the search."
        ),
    )
    p.add_argument("--data", required=True, help="KIND:PATH (criteo, avazu)")
    p.add_argument("--val-data", default=None, help="KIND:PATH")
    p.add_argument("--preset", default="rm1")
    p.add_argument("--tuner", choices=TUNER_NAMES, default="random")
    p.add_argument("--max-trials", type=positive_int, default=10)
    p.add_argument("--epochs", type=positive_int, default=1)
    p.add_argument("--output", required=True)
    p.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pin a hyperparameter (repeatable)",
    )
    p.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="KEY=LO:HI|KEY=[CHOICES]",
        help="narrow a hyperparameter (repeatable)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset field that is not searched (repeatable)",
    )
    p.add_argument("--val-fraction", type=fraction, default=0.2)
    p.add_argument("--split", choices=("time", "random"), default="time")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--patience", type=positive_int, default=2)
    p.add_argument("--on-bad-lines", choices=("error", "skip"), default="error")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over instead of resuming the search in --output",
    )
    p.add_argument(
        "--no-export",
        action="store_true",
        help="skip saving and exporting the best model",
    )
    p.add_argument(
        "--version", type=positive_int, default=None, help="serving version"
    )
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also train the preset's defaults the same way, for comparison",
    )
    p.add_argument("--quiet", action="store_true")
    return p


def parse_fixed(pairs):
    """`["num_heads=2", "activation=gelu"]` -> `{"num_heads": 2, ...}`."""
    return parse_set(pairs, flag="--fix")


def parse_ranges(pairs):
    """`["dropout=0.01:0.1", "num_heads=[1,2]"]` -> ranges dict.

    `LO:HI` gives a `(lo, hi)` tuple, a JSON list gives choices.
    """
    ranges = {}
    for key, value in _raw_pairs(pairs, "--range").items():
        if value.startswith("["):
            try:
                choices = json.loads(value)
            except json.JSONDecodeError as error:
                raise UsageError(
                    f"--range {key}: {value!r} is not a JSON list ({error})"
                ) from None
            ranges[key] = choices
            continue
        lo, _, hi = value.partition(":")
        try:
            ranges[key] = (float(lo), float(hi))
        except ValueError:
            raise UsageError(
                f"--range {key}={value!r}: give LO:HI (numbers) or a JSON "
                'list of choices such as ["relu", "gelu"]'
            ) from None
    return ranges


def _raw_pairs(pairs, flag):
    parsed = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"{flag} expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip()
        if key in parsed:
            raise UsageError(f"{flag} {key} given twice")
        parsed[key] = value.strip()
    return parsed


def _installed(name):
    return importlib.util.find_spec(name) is not None


def _bayesian_available():
    return all(_installed(name) for name in ("sklearn", "scipy"))


def check(args):
    """Validate `args` before any data is read; return the parsed options.

    Returns:
        dict with `fixed`, `ranges` and `preset` (the checked preset).

    Raises:
        UsageError: with a one-line message (also when keras-tuner is not
            installed).
    """
    if not _installed("keras_tuner"):
        raise UsageError(
            f"adrec tune needs keras-tuner, which is not installed: "
            f"{INSTALL_HINT}"
        )
    from keras_adrec.models import SequentialPreset
    from keras_adrec.tuning.search_space import AdRecSearchSpace

    fixed = parse_fixed(args.fix)
    ranges = parse_ranges(args.range)
    overrides = parse_set(args.set)
    fields = check_preset(args.preset, overrides)
    if isinstance(fields, SequentialPreset):
        raise UsageError(
            f"adrec tune searches the ranking presets rm1-rm3; tune "
            f"{args.preset} from Python with "
            "keras_adrec.tuning.SequentialHyperModel"
        )
    try:
        AdRecSearchSpace(fields, fixed=fixed, ranges=ranges)
    except ValueError as error:
        raise UsageError(str(error)) from None
    kind, _ = check_data(args.data, task="ranking")
    if args.val_data:
        check_val_data(args.val_data, kind, task="ranking")
    if args.tuner == "bayesian" and not _bayesian_available():
        raise UsageError(
            "--tuner bayesian needs scikit-learn and scipy: pip install "
            "'keras-tuner[bayesian]'"
        )
    return {"fixed": fixed, "ranges": ranges, "preset": fields}


def run(args):
    """Check usage, run `keras_adrec.jobs.tune.tune`, print a summary."""
    options = check(args)
    from keras_adrec.jobs.tune import SERVING_DIR
    from keras_adrec.jobs.tune import TuneSettings
    from keras_adrec.jobs.tune import tune

    try:
        result = tune(
            make_settings(
                TuneSettings,
                data=args.data,
                output=args.output,
                preset=options["preset"],
                tuner=args.tuner,
                max_trials=args.max_trials,
                epochs=args.epochs,
                fixed=options["fixed"],
                ranges=options["ranges"],
                val_data=args.val_data,
                val_fraction=args.val_fraction,
                split_mode=args.split,
                seed=args.seed,
                patience=args.patience,
                on_bad_lines=args.on_bad_lines,
                overwrite=args.overwrite,
                export=not args.no_export,
                version=args.version,
                baseline=args.baseline,
                verbose=not args.quiet,
            )
        )
    except ValueError as error:
        # A rerun whose settings differ from the search in --output.
        if "holds a search started with different settings" in str(error):
            raise UsageError(str(error)) from None
        raise
    except OSError as error:
        # Disk full, read-only: one line naming --output (exit status 1).
        if is_write_error(error, args.output):
            raise write_error(error, args.output) from None
        raise
    if result["role"] == "worker":
        print(f"Worker {result['tuner_id']} finished its trials.")
        return result
    trials = result["trials"]
    print(
        f"Trials: {trials['completed']} completed of {trials['total']}. "
        f"Table: {result['paths']['markdown']}"
    )
    best = result["best"]
    if best is not None:
        print(
            f"Best trial {best['trial']}: val AUC {best['val_auc']:.4f}; "
            f"hyperparameters: {result['paths']['best']}"
        )
    if result.get("baseline"):
        print(
            "Preset defaults, trained the same way: val AUC "
            f"{result['baseline']['val_auc']:.4f}"
        )
    if result["paths"].get("best_model"):
        print(f"Best model: {result['paths']['best_model']}")
    if result["paths"].get("serving"):
        print(f"Serving export: {result['paths']['serving']}")
    elif result["paths"].get("best_model"):
        print(f"No serving export written under {SERVING_DIR}/.")
    return result
