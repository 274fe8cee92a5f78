"""What every `adrec` sub-command shares: the usage error, the parser that
raises it, `--set KEY=VALUE` parsing and argument checks.

A usage error prints one line `adrec: error: ...` and exits with status 2.
"""

import argparse
import json

from keras_adrec import data as adrec_data
from keras_adrec.models import get_preset
from keras_adrec.training.build import build_ranking_model
from keras_adrec.training.build import build_sequential_model
from keras_adrec.training.distribution import check_tf_config
from keras_adrec.training.model_directory import RunExistsError
from keras_adrec.training.model_directory import check_output
from keras_adrec.training.run_folder import UnsafeOutputError


class UsageError(Exception):
    """Invalid command-line usage: reported in one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` that raises `UsageError` instead of
    printing usage and exiting."""

    def error(self, message):
        raise UsageError(message)


def parse_set(pairs, flag="--set"):
    """`["num_heads=4", "mask_thresholds=[0.1,0.01]"]` -> dict.

    Values are read as JSON where they parse (numbers, lists, null, true),
    otherwise kept as strings.

    Raises:
        UsageError: a pair without `=`, or a key given twice.
    """
    overrides = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"{flag} expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip()
        if key in overrides:
            raise UsageError(f"{flag} {key} given twice")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value.strip()
    return overrides


def integer(text):
    """argparse `type=`: any int; its range is checked where it is used
    (a preset field's check, naming the field)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer, got {text!r}"
        ) from None


def positive_int(text):
    """argparse `type=`: an int >= 1."""
    return _bounded_int(text, 1, "a positive integer")


def non_negative_int(text):
    """argparse `type=`: an int >= 0."""
    return _bounded_int(text, 0, "a non-negative integer")


def fraction(text):
    """argparse `type=`: a float strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number between 0 and 1, got {text!r}"
        ) from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"must lie strictly between 0 and 1, got {text}"
        )
    return value


def _bounded_int(text, minimum, what):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {what}, got {text!r}"
        ) from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
    return value


def check_preset(preset, overrides):
    """The preset with `--set` `overrides`, checked by field name, type
    and range (`keras_adrec.models.presets.Preset.validate`), or
    `UsageError` naming the field."""
    try:
        get_preset(preset)
    except ValueError as error:
        raise UsageError(f"--preset: {error}") from None
    try:
        return get_preset(preset, **overrides)
    except (ValueError, TypeError) as error:
        raise UsageError(f"--set: {error}") from None


def apply_flags(config, flags):
    """`config` with flag values replacing preset fields, through the same
    checks as `--set`.

    Args:
        config: a `keras_adrec.models.presets.Preset`.
        flags: dict `flag -> (field, value)`, e.g.
            `{"--batch-size": ("batch_size", 0)}`; a None value is skipped.

    Raises:
        UsageError: a bad value, naming the flag and the field.
    """
    for flag, (field, value) in flags.items():
        if value is None:
            continue
        try:
            config = config.replace(**{field: value})
        except (ValueError, TypeError) as error:
            raise UsageError(f"{flag}: {error}") from None
    return config


def make_settings(settings_class, **values):
    """A job's settings dataclass, or `UsageError` naming the field."""
    try:
        return settings_class(**values)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None


def check_data(spec, task=None, flag="--data"):
    """`(kind, paths)` of a `KIND:PATH` spec, or `UsageError`."""
    try:
        return adrec_data.parse_data_spec(spec, task=task)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(f"{flag}: {error}") from None


def check_val_data(spec, kind, task=None):
    """The paths of a `--val-data` spec of the same kind as `--data`'s
    `kind`, or `UsageError`."""
    val_kind, paths = check_data(spec, task=task, flag="--val-data")
    if val_kind != kind:
        raise UsageError(
            f"--val-data is {val_kind} data but --data is {kind}: give "
            "validation data of the same kind"
        )
    return paths


def check_strategy(strategy):
    """`UsageError` for `--strategy multiworker` without a usable
    `TF_CONFIG` environment variable."""
    if strategy != "multiworker":
        return
    try:
        check_tf_config()
    except ValueError as error:
        raise UsageError(f"--strategy multiworker: {error}") from None


def check_model_fields(fields, schema=None):
    """Build a tiny model from `fields` so that bad preset values (heads
    that do not divide the width, thresholds outside [0, 1), ...) fail in
    one line before any data is read.

    Args:
        fields: a `keras_adrec.models.presets.Preset`.
        schema: the ranking data's `DatasetSchema`, or None for a
            sequential preset.
    """
    try:
        if schema is None:
            build_sequential_model(fields, [3, 3, 3], compile=True)
        else:
            build_ranking_model(
                fields, [3] * schema.num_categorical, schema.num_dense
            )
    except (ValueError, TypeError, KeyError) as error:
        message = str(error).strip().splitlines()
        raise UsageError(
            f"--set: the preset fields do not make a model: "
            f"{message[0] if message else type(error).__name__}"
        ) from None


def check_output_dir(output, overwrite=False, inputs=(), kind="train"):
    """`check_output` as a usage error (exit 2); `kind` is the run kind
    that writes `output` (see `keras_adrec.training.run_folder`)."""
    try:
        check_output(output, overwrite=overwrite, inputs=inputs, kind=kind)
    except UnsafeOutputError as error:
        raise UsageError(str(error)) from None
    except RunExistsError as error:
        raise UsageError(f"--output {error}") from None
