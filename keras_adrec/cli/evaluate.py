"""`adrec evaluate`: score a trained model directory on data."""

import json
import sys

from keras_adrec.cli.arguments import UsageError
from keras_adrec.cli.arguments import check_data
from keras_adrec.cli.arguments import make_settings
from keras_adrec.cli.arguments import positive_int
from keras_adrec.jobs.evaluate import EvaluateSettings
from keras_adrec.jobs.evaluate import evaluate
from keras_adrec.training.model_directory import ModelDirectory


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="evaluate a trained model")
    p.add_argument(
        "--model", required=True, help="a directory from `adrec train`"
    )
    p.add_argument("--data", required=True, help="KIND:PATH")
    p.add_argument("--batch-size", type=positive_int, default=1024)
    p.add_argument("--on-bad-lines", choices=("error", "skip"), default="error")
    return p


def run(args):
    run_dir = ModelDirectory(args.model)
    try:
        run_dir.check()
    except FileNotFoundError:
        raise UsageError(
            f"--model {args.model} holds no trained model "
            f"({run_dir.model_path.name} and {run_dir.config_path.name})"
        ) from None
    kind, _ = check_data(args.data)
    trained = run_dir.data_kind()
    if kind != trained:
        raise UsageError(
            f"--model {args.model} was trained on {trained} data; it cannot "
            f"evaluate {kind} data"
        )
    metrics = evaluate(
        make_settings(
            EvaluateSettings,
            model_dir=args.model,
            data=args.data,
            batch_size=args.batch_size,
            on_bad_lines=args.on_bad_lines,
        )
    )
    print(json.dumps(metrics, allow_nan=False))
    for warning in metrics.get("warnings", ()):
        print(f"adrec: warning: {warning}", file=sys.stderr)
