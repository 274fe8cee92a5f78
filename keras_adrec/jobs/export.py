"""`adrec export`: a trained model directory to a TF Serving SavedModel.

`export_model(ExportSettings(model_dir=..., export_dir=...))` reads the
data kind the model was trained on and calls the exporter of its task
(`keras_adrec.export`); `format="onnx"` writes an ONNX model instead.
"""

import dataclasses

from keras_adrec.data.kinds import data_kind
from keras_adrec.export.onnx_export import export_onnx
from keras_adrec.export.sequential_serving import export_sequential_for_serving
from keras_adrec.export.serving import export_for_serving
from keras_adrec.jobs import settings as checks
from keras_adrec.training.model_directory import ModelDirectory

# Task of the data kind -> exporter(model_dir, export_dir, version, overwrite)
EXPORTERS = {
    "ranking": export_for_serving,
    "sequential": export_sequential_for_serving,
}
FORMATS = ("saved_model", "onnx")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportSettings:
    """Everything `export_model` needs, checked on creation.

    Args:
        model_dir: str or path. A directory written by `adrec train`.
        export_dir: str or path. The model base path TF Serving watches.
        version: int > 0 or None (the next version).
        overwrite: bool. Replace an existing version folder.
        format: `"saved_model"` (TF Serving, the default) or `"onnx"`
            (`keras_adrec.export.export_onnx`).
        jit_compile: bool. SavedModel only: compile the forward pass with
            XLA (`keras_adrec.export.serving.forward_pass`).
    """

    model_dir: object
    export_dir: object
    version: int | None = None
    overwrite: bool = False
    format: str = "saved_model"
    jit_compile: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Check every setting; raise naming the first bad one."""
        checks.check_int("version", self.version, 1, optional=True)
        checks.check_choice("format", self.format, FORMATS)
        if self.jit_compile and self.format != "saved_model":
            raise ValueError(
                "`jit_compile` (--xla) applies to the SavedModel format only. "
                f"Received: format={self.format!r}"
            )


def export_model(settings):
    """Export a trained model directory to `export_dir/<version>/`.

    Args:
        settings: an `ExportSettings`.

    Returns:
        `pathlib.Path` of the version directory.

    Raises:
        FileNotFoundError: `model_dir` holds no trained model.
        ValueError: a model of a task no exporter handles yet.
        FileExistsError: the version exists and `overwrite` is False.
    """
    model_dir = settings.model_dir
    run = ModelDirectory(model_dir)
    run.check()
    kind = run.data_kind()
    try:
        task = data_kind(kind).task
    except ValueError:
        task = None
    if task not in EXPORTERS:
        raise ValueError(
            f"The model in {model_dir} was trained on {kind!r} data; "
            f"export supports {', '.join(EXPORTERS)} models."
        )
    options = {"version": settings.version, "overwrite": settings.overwrite}
    if settings.format == "onnx":
        return export_onnx(model_dir, settings.export_dir, **options)
    return EXPORTERS[task](
        model_dir,
        settings.export_dir,
        jit_compile=settings.jit_compile,
        **options,
    )
