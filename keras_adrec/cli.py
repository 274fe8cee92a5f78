"""The `adrec` command: train, evaluate and compare Ad-Rec ranking models.

Invalid usage (unknown preset, interaction, field or a bad path) prints one
line `adrec: error: ...` and exits with status 2; malformed data prints the
reader's one-line error and exits with status 1. No tracebacks for either.
"""

import argparse
import contextlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what TensorFlow's C++ runtime prints to fd 2 while loading.

    Importing TensorFlow prints absl and CUDA-not-found notices straight to
    the stderr file descriptor (TF_CPP_MIN_LOG_LEVEL does not reach them);
    they are harmless, and they would break the one-line error contract.
    Python exceptions raised meanwhile still propagate normally.
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _import_runtime():
    with _quiet_native_stderr():
        import tensorflow  # noqa: F401

        import keras_adrec.models  # noqa: F401


# Ranking kinds (criteo, avazu) and the sequential kind (taobao).
ALL_DATA_KINDS = ("criteo", "avazu", "taobao")


class UsageError(Exception):
    """Invalid command-line usage: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _parse_set(pairs):
    """`["num_heads=4", "mask_thresholds=[0.1,0.01]"]` -> dict.

    Values are read as JSON where they parse (numbers, lists, null, true),
    otherwise kept as strings.
    """
    overrides = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


def _add_train(subparsers):
    p = subparsers.add_parser("train", help="train a ranking model")
    p.add_argument(
        "--data", required=True, help="KIND:PATH, e.g. criteo:train.txt"
    )
    p.add_argument(
        "--preset",
        default=None,
        help="rm1-rm3 (ranking; default rm1), rm4-rm7 (taobao; default rm4)",
    )
    p.add_argument("--interaction", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--output", required=True)
    p.add_argument("--val-data", default=None)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--split", choices=("time", "random"), default="time")
    p.add_argument("--target-auc", type=float, default=None)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
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
        choices=("default", "mirrored", "multiworker"),
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
        type=int,
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


def _add_evaluate(subparsers):
    p = subparsers.add_parser("evaluate", help="evaluate a trained model")
    p.add_argument(
        "--model", required=True, help="a directory from `adrec train`"
    )
    p.add_argument("--data", required=True, help="KIND:PATH")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--on-bad-lines", choices=("error", "skip"), default="error")


def build_parser():
    parser = _Parser(
        prog="adrec",
        description="Ad-Rec masked-transformer recommendation models.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train(subparsers)
    _add_evaluate(subparsers)
    from keras_adrec.export import add_export_parser
    from keras_adrec.training.compare_job import add_compare_parser
    from tuning.cli import add_tune_parser

    add_compare_parser(subparsers)
    add_export_parser(subparsers)
    add_tune_parser(subparsers)
    return parser


def _check_train_usage(args):
    from keras_adrec.models import get_preset
    from keras_adrec.models import interaction_names
    from keras_adrec.training.ranking_job import parse_data_spec

    overrides = _parse_set(args.set)
    try:
        get_preset(args.preset, **overrides)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.interaction is not None and (
        args.interaction.lower() not in interaction_names()
    ):
        raise UsageError(
            f"unknown interaction {args.interaction!r}; choose one of "
            f"{', '.join(interaction_names())}"
        )
    for spec in filter(None, [args.data, args.val_data]):
        try:
            parse_data_spec(spec, kinds=ALL_DATA_KINDS)
        except (ValueError, FileNotFoundError) as error:
            raise UsageError(str(error)) from None
    if not 0.0 < args.val_fraction < 1.0:
        raise UsageError("--val-fraction must lie strictly between 0 and 1")
    return overrides


def _run_train(args):
    from keras_adrec.training.ranking_job import train_ranking

    if args.preset is None:
        taobao = args.data.lower().startswith("taobao:")
        args.preset = "rm4" if taobao else "rm1"
    overrides = _check_train_usage(args)
    if args.checkpoint_every < 1:
        raise UsageError("--checkpoint-every must be positive")
    if args.data.lower().startswith("taobao:"):
        _run_train_taobao(args, overrides)
        return
    if "sequence_layer" in _preset_fields(args.preset, overrides):
        raise UsageError(
            f"preset {args.preset} is sequential; use it with taobao data"
        )
    try:
        summary = train_ranking(
            data=args.data,
            output=args.output,
            preset=args.preset,
            interaction=args.interaction,
            epochs=args.epochs,
            val_data=args.val_data,
            target_auc=args.target_auc,
            eval_every=args.eval_every,
            seed=args.seed,
            verbose=not args.quiet,
            overrides=overrides,
            val_fraction=args.val_fraction,
            split_mode=args.split,
            on_bad_lines=args.on_bad_lines,
            batch_size=args.batch_size,
            strategy=args.strategy,
            checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every,
            mixed_precision=args.mixed_precision,
            scale_lr=args.scale_lr,
        )
    except FileExistsError as error:
        # --checkpoint-dir holds another run's checkpoints.
        raise UsageError(str(error)) from None
    print(json.dumps(summary))


def _run_train_taobao(args, overrides):
    from keras_adrec.training.ranking_job import parse_data_spec
    from keras_adrec.training.sequential_job import train_sequential

    unsupported = {
        "--val-data": args.val_data,
        "--checkpoint-dir": args.checkpoint_dir,
        "--strategy": args.strategy != "default",
        "--mixed-precision": args.mixed_precision != "off",
    }
    named = [flag for flag, used in unsupported.items() if used]
    if named:
        raise UsageError(
            f"{', '.join(named)} not supported with taobao data yet"
        )
    preset = args.preset
    if "sequence_layer" not in _preset_fields(preset, overrides):
        raise UsageError(
            f"preset {preset} is not sequential; use rm4-rm7 with taobao"
        )
    _, paths = parse_data_spec(args.data, kinds=ALL_DATA_KINDS)
    summary = train_sequential(
        paths[0],
        args.output,
        preset=preset,
        interaction=args.interaction,
        epochs=args.epochs,
        target_auc=args.target_auc,
        eval_every=args.eval_every,
        seed=args.seed,
        verbose=not args.quiet,
        overrides=overrides,
        batch_size=args.batch_size,
        on_bad_lines=args.on_bad_lines,
    )
    print(json.dumps(summary))


def _preset_fields(preset, overrides):
    from keras_adrec.models import get_preset

    try:
        return get_preset(preset, **overrides)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _run_evaluate(args):
    from keras_adrec.training.ranking_job import MODEL_FILE
    from keras_adrec.training.ranking_job import evaluate_ranking
    from keras_adrec.training.ranking_job import parse_data_spec

    if not os.path.isfile(os.path.join(args.model, MODEL_FILE)):
        raise UsageError(f"--model {args.model} holds no {MODEL_FILE}")
    try:
        kind, paths = parse_data_spec(args.data, kinds=ALL_DATA_KINDS)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    if kind == "taobao":
        from keras_adrec.training.sequential_job import evaluate_sequential

        metrics = evaluate_sequential(
            args.model, paths[0], on_bad_lines=args.on_bad_lines
        )
        print(json.dumps(metrics))
        return
    metrics = evaluate_ranking(
        args.model,
        args.data,
        batch_size=args.batch_size,
        on_bad_lines=args.on_bad_lines,
    )
    print(json.dumps(metrics))


def main(argv=None):
    """Entry point of the `adrec` command; returns the exit status."""
    try:
        _import_runtime()
        args = build_parser().parse_args(argv)
        from keras_adrec.data import DataFormatError
        from keras_adrec.data import raise_data_format_errors
        from keras_adrec.export import run_export
        from keras_adrec.training.compare_job import run_compare
        from tuning.cli import run_tune

        runners = {
            "train": _run_train,
            "evaluate": _run_evaluate,
            "compare": run_compare,
            "export": run_export,
            "tune": run_tune,
        }
        try:
            with raise_data_format_errors():
                runners[args.command](args)
        except DataFormatError as error:
            print(f"adrec: data error: {error}", file=sys.stderr)
            return 1
        except FloatingPointError as error:
            # A diverged run: one line, exit status 1, like a data error.
            print(f"adrec: error: {error}", file=sys.stderr)
            return 1
    except UsageError as error:
        print(f"adrec: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
