"""Versioned SavedModel folders, the layout TF Serving watches.

`export_dir/<version>/` folders: which version comes next, whether an
existing one may be replaced (an adrec export holding SavedModel files
only), and the staged write that renames a complete version into place
so TF Serving never sees a half-written one. `keras_adrec.export.serving`
and `keras_adrec.export.sequential_serving` write through it.
"""

import datetime
import os
import pathlib
import shutil
import uuid

import keras
import tensorflow as tf

from keras_adrec.training import run_folder
from keras_adrec.training import run_writes
from keras_adrec.version import __version__

METADATA_FILE = os.path.join("assets.extra", "adrec_serving.json")
# What a SavedModel (or ONNX) version folder holds besides the run marker.
SAVED_MODEL_NAMES = (
    "model.onnx",
    "preprocessing",
    "saved_model.pb",
    "saved_model.pbtxt",
    "fingerprint.pb",
    "variables",
    "assets",
    "assets.extra",
)


def next_version(export_dir):
    """The version after the largest integer-named folder, or 1."""
    export_dir = pathlib.Path(export_dir)
    versions = []
    if export_dir.is_dir():
        versions = [
            int(p.name)
            for p in export_dir.iterdir()
            if p.is_dir() and p.name.isascii() and p.name.isdigit()
        ]
    return max(versions, default=0) + 1


# The file that marks a version folder's format.
FORMAT_FILES = {"saved_model": "saved_model.pb", "onnx": "model.onnx"}


def check_one_format(export_dir, format):
    """Raise `ValueError` when `export_dir` holds versions of another
    format: a model server watching the folder loads its largest version,
    whatever it holds."""
    export_dir = pathlib.Path(export_dir)
    if not export_dir.is_dir():
        return
    for folder in sorted(export_dir.iterdir()):
        if not (folder.is_dir() and folder.name.isdigit()):
            continue
        for other, marker in FORMAT_FILES.items():
            if other != format and (folder / marker).is_file():
                raise ValueError(
                    f"{export_dir} holds {other} versions ({folder.name}/"
                    f"{marker}); write the {format} export to another "
                    "output folder, since a model server loads the largest "
                    "version whatever its format."
                )


def resolve_version(export_dir, version, overwrite=False):
    """The version folder number to write: `version`, or the next one.

    Raises:
        ValueError: `version` is not a positive int or None.
        FileExistsError: the version exists and `overwrite` is False.
    """
    if version is None:
        return next_version(export_dir)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(
            f"`version` must be a positive int or None. Received: "
            f"version={version!r}"
        )
    if version < 1:
        raise ValueError(
            f"`version` must be a positive int or None. Received: "
            f"version={version}"
        )
    target = pathlib.Path(export_dir) / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} already exists: choose another version, omit it to "
            "take the next one, or pass overwrite=True (--overwrite)."
        )
    if target.exists():
        check_replaceable_version(target)
    return version


def check_replaceable_version(target):
    """Raise `UnsafeOutputError` unless `target` is an adrec export (a
    marker, or an older adrec's metadata) of SavedModel files only."""
    run_folder.check_target_path(target)
    run_folder.check_replaceable(
        target,
        "export",
        allowed=SAVED_MODEL_NAMES,
        legacy=lambda folder: (folder / METADATA_FILE).is_file(),
    )


def publish_version(export_dir, version, write, inputs=()):
    """Run `write(staging)` into a hidden folder, then rename it to
    `export_dir/<version>/`, so TF Serving never sees a half-written
    version. Returns the version's `pathlib.Path`.

    The version folder gets a run marker of kind `"export"`
    (`keras_adrec.training.run_folder`). An existing version folder is
    replaced only when it is an adrec export (a marker, or the
    `assets.extra/adrec_serving.json` of an older adrec) holding nothing
    but SavedModel files, and only after the new version is complete. The
    version folder may not equal, contain or lie inside one of `inputs`.

    Raises:
        keras_adrec.training.run_folder.UnsafeOutputError: the rules above.
        keras_adrec.training.run_folder.OutputWriteError: a write failed.
    """
    export_dir = pathlib.Path(export_dir)
    target = export_dir / str(version)
    run_folder.check_target_path(target)
    run_folder.check_inputs(target, inputs)
    if target.exists():
        check_replaceable_version(target)
    # Not `tempfile.mkdtemp`: its mode 0700 would hide the version from a
    # model server running as another user.
    staging = export_dir / f".{version}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        export_dir.mkdir(parents=True, exist_ok=True)
        write(staging)
        run_folder.write_marker(staging, "export", "finished")
        run_writes.replace_folder(staging, target)
    except OSError as error:
        if run_writes.is_write_error(error, export_dir):
            raise run_writes.write_error(error, target) from None
        raise
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def export_provenance(export_format, model_dir, version):
    """The first entries of every export's `adrec_serving.json`: what
    wrote it, with which versions, when, and from which model folder.

    Args:
        export_format: str, such as `"serving export"`.
        model_dir: the trained model's folder.
        version: int, the version folder's number.
    """
    return {
        "format": f"keras_adrec {export_format}",
        "keras_adrec_version": __version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "version": version,
        "source_model_dir": os.path.abspath(os.fspath(model_dir)),
    }
