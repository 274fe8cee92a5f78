"""`adrec export`: a trained model directory to a TF Serving SavedModel.

`export_model` reads the data kind the model was trained on and calls the
exporter of its task (`keras_adrec.export`).
"""

from keras_adrec.data.kinds import data_kind
from keras_adrec.export.sequential_serving import export_sequential_for_serving
from keras_adrec.export.serving import export_for_serving
from keras_adrec.training.model_directory import ModelDirectory

# Task of the data kind -> exporter(model_dir, export_dir, version, overwrite)
EXPORTERS = {
    "ranking": export_for_serving,
    "sequential": export_sequential_for_serving,
}


def export_model(model_dir, export_dir, version=None, overwrite=False):
    """Export the model in `model_dir` to `export_dir/<version>/`.

    Args:
        model_dir: a directory written by `adrec train`.
        export_dir: the model base path TF Serving watches.
        version: positive int or None (the next version).
        overwrite: bool. Replace an existing version folder.

    Returns:
        `pathlib.Path` of the version directory.

    Raises:
        FileNotFoundError: `model_dir` holds no trained model.
        ValueError: a model of a task no exporter handles yet.
        FileExistsError: the version exists and `overwrite` is False.
    """
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
    return EXPORTERS[task](
        model_dir, export_dir, version=version, overwrite=overwrite
    )
