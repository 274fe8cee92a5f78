"""`adrec export`: a trained model directory to a TF Serving SavedModel."""

import json
import os

from keras_adrec.cli.arguments import UsageError
from keras_adrec.cli.arguments import make_settings
from keras_adrec.cli.arguments import positive_int
from keras_adrec.data import data_kind
from keras_adrec.export.versions import check_one_format
from keras_adrec.jobs.export import EXPORTERS
from keras_adrec.jobs.export import FORMATS
from keras_adrec.jobs.export import ExportSettings
from keras_adrec.jobs.export import export_model
from keras_adrec.training.model_directory import ModelDirectory


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export",
        help="export a trained model as a SavedModel for TF Serving",
        description=(
            "Write OUTPUT/<version>/, a SavedModel whose serving_default "
            "signature takes raw features (dense float32, categorical "
            "strings) and serve_examples takes serialized tf.Example, "
            "with TF Serving warm-up records; or, with --format onnx, "
            "OUTPUT/<version>/model.onnx (preprocessed inputs, see "
            "docs/serving.md)."
        ),
    )
    p.add_argument(
        "--model", required=True, help="a directory from `adrec train`"
    )
    p.add_argument(
        "--output",
        required=True,
        help="model base path for TF Serving; the version folder goes inside",
    )
    p.add_argument(
        "--version",
        type=positive_int,
        default=None,
        help="version number (default: next after the existing ones)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="saved_model",
        help="saved_model (TF Serving, default) or onnx (ONNX Runtime)",
    )
    p.add_argument(
        "--xla",
        action="store_true",
        help="compile the SavedModel's forward pass with XLA (faster small "
        "batches; TF Serving then needs --xla_cpu_compilation_enabled=true)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing version folder",
    )
    return p


def run(args):
    run_dir = ModelDirectory(args.model)
    for path in (run_dir.model_path, run_dir.config_path):
        if not path.is_file():
            raise UsageError(f"--model {args.model} holds no {path.name}")
    kind = run_dir.data_kind()
    try:
        task = data_kind(kind).task
    except ValueError:
        task = None
    if task not in EXPORTERS:
        raise UsageError(
            f"--model {args.model} was trained on {kind!r} data; export "
            f"supports {', '.join(EXPORTERS)} models"
        )
    try:
        check_one_format(args.output, args.format)
    except ValueError as error:
        raise UsageError(f"--output: {error}") from None
    if args.version is not None and not args.overwrite:
        target = os.path.join(args.output, str(args.version))
        if os.path.exists(target):
            raise UsageError(
                f"{target} already exists; pass --overwrite to replace it "
                "or omit --version to take the next one"
            )
    path = export_model(
        make_settings(
            ExportSettings,
            model_dir=args.model,
            export_dir=args.output,
            version=args.version,
            overwrite=args.overwrite,
            format=args.format,
            jit_compile=args.xla,
        )
    )
    print(json.dumps({"path": str(path), "version": int(path.name)}))
