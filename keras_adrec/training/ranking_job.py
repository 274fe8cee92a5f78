"""Train and evaluate a ranking model on Criteo or Avazu files.

This is what `adrec train` and `adrec evaluate` run, usable from Python too.
A trained model directory holds:

- `model.keras`: the Keras model (ids in, probability out);
- `preprocessing/`: the fitted `FeaturePreprocessor` artifacts;
- `config.json`: data kind, preset fields, interaction, seed and split;
- `curve.csv`: step, train loss, val AUC, val logloss, val accuracy, time;
- `metrics.json`: `auc`, `logloss`, `accuracy` on validation, plus `steps`,
  `steps_to_target` (or null), `samples_per_sec`, the strategy and its
  replica count, the learning rate used, the mixed-precision policy and
  `resumed_from_step`.

Scaling out and surviving faults (see `keras_adrec.training.distribution`
for batch-size and learning-rate semantics):

- `strategy`: `"default"`, `"mirrored"` (local GPUs) or `"multiworker"`
  (hosts in `TF_CONFIG`; a custom training loop, as `model.fit` fails
  there). The batch size is global.
- `checkpoint_dir`: a `TrainingCheckpoint` every `checkpoint_every` steps.
  The epochs are one stream of batches (`repeat(epochs)`), so a rerun of
  the same command restores the last checkpoint and skips exactly the
  batches already trained: a killed run finishes with the same number of
  steps as an uninterrupted one.
- A NaN or infinite loss stops training (`NanGuard`) and raises
  `FloatingPointError`; no model is written, the checkpoint directory keeps
  the last good checkpoint.
- `mixed_precision`: `"float16"` or `"bfloat16"` set the Keras
  `mixed_float16` / `mixed_bfloat16` policy while the model is built;
  under `mixed_float16`, `model.compile` wraps the optimizer in a
  `LossScaleOptimizer` (dynamic loss scaling).
"""

import contextlib
import json
import math
import os
import pathlib
import time

import keras
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.models.presets import get_preset
from keras_adrec.models.ranking_model import RankingModel
from keras_adrec.training import distribution
from keras_adrec.training.custom_loop import train_custom_loop
from keras_adrec.training.metrics import evaluate_model
from keras_adrec.training.nan_guard import NanGuard
from keras_adrec.training.resumable_convergence_logger import (
    ResumableConvergenceLogger,
)
from keras_adrec.training.training_checkpoint import TrainingCheckpoint

DATA_KINDS = ("criteo", "avazu")
MODEL_FILE = "model.keras"
PREPROCESSING_DIR = "preprocessing"
CONFIG_FILE = "config.json"
CURVE_FILE = "curve.csv"
METRICS_FILE = "metrics.json"
# Files smaller than this are cached in memory after preprocessing.
_CACHE_BYTES = 512 * 1024 * 1024
# `--mixed-precision` choice -> Keras dtype policy.
MIXED_PRECISION_POLICIES = {
    "off": None,
    "float16": "mixed_float16",
    "bfloat16": "mixed_bfloat16",
}
DEFAULT_CHECKPOINT_EVERY = 100


def parse_data_spec(spec, kinds=DATA_KINDS):
    """Split `"KIND:PATH"` into `(kind, path)` and check both.

    Several paths may be joined with commas: `criteo:day_0,day_1`.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(
            f"Data must be given as KIND:PATH with KIND one of "
            f"{', '.join(kinds)}. Received: {spec!r}"
        )
    kind, path = spec.split(":", 1)
    kind = kind.lower()
    if kind not in kinds:
        raise ValueError(
            f"Unknown data kind {kind!r} in {spec!r}. Known kinds: "
            f"{', '.join(kinds)}."
        )
    paths = [p for p in path.split(",") if p]
    if not paths:
        raise ValueError(f"No path given in {spec!r}.")
    for p in paths:
        if not any(ch in p for ch in "*?[") and not os.path.exists(p):
            raise FileNotFoundError(f"Data path does not exist: {p}")
    return kind, paths


def make_optimizer(name, learning_rate):
    """A Keras optimizer from a name (`sgd`, `adagrad`, `adam`, ...)."""
    try:
        return keras.optimizers.get(
            {"class_name": name, "config": {"learning_rate": learning_rate}}
        )
    except ValueError as error:
        raise ValueError(f"Unknown optimizer {name!r}: {error}") from None


def _total_bytes(paths):
    total = 0
    for path in paths:
        p = pathlib.Path(path)
        if p.is_dir():
            total += sum(f.stat().st_size for f in p.iterdir() if f.is_file())
        elif p.exists():
            total += p.stat().st_size
    return total


def _raw_dataset(kind, paths, batch_size, **kwargs):
    return adrec_data.make_dataset(kind, paths, batch_size, **kwargs)


def build_datasets(
    kind,
    paths,
    batch_size,
    val_paths=None,
    val_fraction=0.2,
    split_mode="time",
    seed=0,
    on_bad_lines="error",
    min_frequency=1,
    max_index_range=None,
):
    """Fit preprocessing on the training rows and return the pipelines.

    Returns:
        `(train_ds, val_ds, preprocessor, read_stats)`; the datasets yield
        `({"dense", "sparse"}, label)` batches.
    """
    common = {"on_bad_lines": on_bad_lines, "seed": seed}
    if val_paths:
        train_raw = _raw_dataset(kind, paths, batch_size, **common)
        val_raw = _raw_dataset(kind, val_paths, batch_size, **common)
    else:
        split = {"val_fraction": val_fraction, "split_mode": split_mode}
        train_raw = _raw_dataset(
            kind, paths, batch_size, split="train", **split, **common
        )
        val_raw = _raw_dataset(
            kind, paths, batch_size, split="val", **split, **common
        )
    schema = adrec_data.SCHEMAS[kind]
    preprocessor = adrec_data.FeaturePreprocessor.fit(
        train_raw,
        schema,
        min_frequency=min_frequency,
        max_index_range=max_index_range,
    )
    train_ds = adrec_data.preprocess(train_raw, preprocessor)
    val_ds = adrec_data.preprocess(val_raw, preprocessor)
    if _total_bytes(list(paths) + list(val_paths or [])) < _CACHE_BYTES:
        train_ds = train_ds.cache()
        val_ds = val_ds.cache()
    stats = {
        "train": getattr(train_raw, "read_stats", None),
        "val": getattr(val_raw, "read_stats", None),
    }
    return (
        train_ds.prefetch(tf.data.AUTOTUNE),
        val_ds.prefetch(tf.data.AUTOTUNE),
        preprocessor,
        stats,
    )


def resolve_fields(
    preset,
    overrides=None,
    interaction=None,
    batch_size=None,
    epochs=None,
    scale_lr=False,
):
    """The preset's fields with the command line's changes applied.

    `batch_size` is the global batch. With `scale_lr`, the learning rate
    (the preset's or an override) is taken as the rate for the preset's
    own batch size and scaled linearly to `batch_size`
    (`distribution.scaled_learning_rate`).
    """
    fields = get_preset(preset, **(overrides or {}))
    if interaction is not None:
        fields["interaction"] = interaction
    if batch_size is not None:
        fields["batch_size"] = int(batch_size)
    if epochs is not None:
        fields["epochs"] = int(epochs)
    if scale_lr:
        fields["learning_rate"] = distribution.scaled_learning_rate(
            fields["learning_rate"],
            fields["batch_size"],
            get_preset(preset)["batch_size"],
        )
    return fields


def train_ranking(
    data,
    output,
    preset="rm1",
    interaction=None,
    epochs=None,
    val_data=None,
    target_auc=None,
    eval_every=None,
    seed=0,
    verbose=True,
    overrides=None,
    val_fraction=0.2,
    split_mode="time",
    on_bad_lines="error",
    batch_size=None,
    strategy="default",
    checkpoint_dir=None,
    checkpoint_every=DEFAULT_CHECKPOINT_EVERY,
    mixed_precision="off",
    scale_lr=False,
):
    """Train a ranking model on `data` and write the model directory.

    Args:
        data: `"KIND:PATH"` (kind `criteo` or `avazu`).
        output: directory to write (created).
        preset: preset name (`"rm1"`, `"rm2"`, `"rm3"`).
        interaction: interaction name; defaults to the preset's.
        epochs: int; defaults to the preset's (1).
        val_data: optional `"KIND:PATH"` of validation files; otherwise the
            last `val_fraction` of `data` (time order) is validation.
        target_auc: stop when validation AUC reaches it.
        eval_every: evaluate every this many steps (also at the end).
        seed: int seed for weights, dropout and the random split.
        verbose: show the Keras progress bar and evaluation lines.
        overrides: dict of preset fields to replace.
        val_fraction, split_mode: the split of `data` without `val_data`.
        on_bad_lines: `"error"` or `"skip"`.
        batch_size: int, the GLOBAL batch size; defaults to the preset's.
        strategy: `"default"`, `"mirrored"`, `"multiworker"` or a
            `tf.distribute.Strategy`.
        checkpoint_dir: folder of step checkpoints to resume from and
            write, or None for none.
        checkpoint_every: int, steps between checkpoints.
        mixed_precision: `"off"`, `"float16"` or `"bfloat16"`.
        scale_lr: bool. Scale the learning rate linearly with the batch
            size relative to the preset's batch size.

    Returns:
        The dict written to `metrics.json`.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    kind, paths = parse_data_spec(data)
    val_paths = None
    if val_data:
        val_kind, val_paths = parse_data_spec(val_data)
        if val_kind != kind:
            raise ValueError(
                f"--val-data kind {val_kind!r} differs from --data kind "
                f"{kind!r}."
            )
    if mixed_precision not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"Unknown mixed precision {mixed_precision!r}. Choose one of "
            f"{', '.join(MIXED_PRECISION_POLICIES)}."
        )
    fields = resolve_fields(
        preset,
        overrides,
        interaction=interaction,
        batch_size=batch_size,
        epochs=epochs,
        scale_lr=scale_lr,
    )
    if isinstance(strategy, str) or strategy is None:
        strategy = distribution.make_strategy(strategy)
    chief = distribution.is_chief(strategy)
    keras.utils.set_random_seed(seed)
    output = pathlib.Path(output)
    if chief:
        output.mkdir(parents=True, exist_ok=True)

    with adrec_data.raise_data_format_errors():
        train_ds, val_ds, preprocessor, stats = build_datasets(
            kind,
            paths,
            fields["batch_size"],
            val_paths=val_paths,
            val_fraction=val_fraction,
            split_mode=split_mode,
            seed=seed,
            on_bad_lines=on_bad_lines,
            min_frequency=fields["min_frequency"],
            max_index_range=fields["max_index_range"],
        )
    if chief:
        preprocessor.save_artifacts(output / PREPROCESSING_DIR)

    schema = adrec_data.SCHEMAS[kind]
    with (
        strategy.scope(),
        _dtype_policy(MIXED_PRECISION_POLICIES[mixed_precision]),
    ):
        model = RankingModel.from_preset(
            fields,
            vocabulary_sizes=preprocessor.vocabulary_sizes,
            num_dense=schema.num_dense,
        )
        model.build(
            {
                "dense": (None, schema.num_dense),
                "sparse": (None, len(preprocessor.vocabulary_sizes)),
            }
        )
        model.compile(
            optimizer=make_optimizer(
                fields["optimizer"], fields["learning_rate"]
            ),
            loss="binary_crossentropy",
            metrics=[keras.metrics.AUC(name="auc")],
        )
        model.optimizer.build(model.trainable_variables)
    logger = ResumableConvergenceLogger(
        val_ds,
        eval_every=eval_every,
        target_auc=target_auc,
        curve_path=str(output / CURVE_FILE) if chief else None,
        batch_size=fields["batch_size"],
        verbose=verbose and chief,
    )
    config = {
        "data": {"kind": kind, "paths": [str(p) for p in paths]},
        "val_data": [str(p) for p in val_paths] if val_paths else None,
        "val_fraction": None if val_paths else val_fraction,
        "split_mode": None if val_paths else split_mode,
        "seed": seed,
        "preset": fields,
        "on_bad_lines": on_bad_lines,
        "mixed_precision": mixed_precision,
    }
    checkpoint = None
    start_step = 0
    if checkpoint_dir:
        checkpoint = TrainingCheckpoint(
            checkpoint_dir,
            save_every=checkpoint_every,
            fingerprint=_fingerprint(config, preprocessor),
            trackers={"logger": logger},
            is_chief=chief,
            task_label=distribution.task_label(strategy),
        )
        start_step = checkpoint.restore(model)
    guard = NanGuard(initial_step=start_step)
    callbacks = [guard, logger] + ([checkpoint] if checkpoint else [])
    if chief:
        (output / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    # One stream of batches over every epoch, so a resumed run skips
    # exactly the steps already trained, wherever they end.
    train_ds = train_ds.repeat(fields["epochs"]).skip(start_step)
    start = time.perf_counter()
    if checkpoint is not None and checkpoint.finished:
        # Nothing left to train: rewrite the restored curve.
        logger.on_train_begin()
    else:
        with adrec_data.raise_data_format_errors():
            if distribution.uses_custom_loop(strategy):
                train_custom_loop(
                    model,
                    train_ds,
                    strategy,
                    callbacks=callbacks,
                    verbose=verbose and chief,
                )
            else:
                model.fit(
                    train_ds,
                    epochs=1,
                    callbacks=callbacks,
                    verbose=1 if verbose else 0,
                    shuffle=False,
                )
    wall = time.perf_counter() - start
    if guard.stopped_step is not None:
        raise FloatingPointError(guard.message(_checkpoint_note(checkpoint)))
    summary = logger.summary()
    if summary["logloss"] is not None and not math.isfinite(summary["logloss"]):
        # The last update made the weights non-finite: no loss saw it.
        raise FloatingPointError(
            "Training diverged in its last step: the model's validation "
            "predictions are not finite, so no model was saved. Lower the "
            "learning rate. " + _checkpoint_note(checkpoint)
        )
    summary.update(
        {
            "data_kind": kind,
            "preset": fields["name"],
            "interaction": _interaction_name(fields["interaction"]),
            "seed": seed,
            "wall_seconds": wall,
            "skipped_lines": {
                split: (s.skipped_lines if s is not None else 0)
                for split, s in stats.items()
            },
            "strategy": distribution.strategy_name(strategy),
            "num_replicas": strategy.num_replicas_in_sync,
            "batch_size": fields["batch_size"],
            "learning_rate": fields["learning_rate"],
            "mixed_precision": mixed_precision,
            "resumed_from_step": start_step,
        }
    )
    if chief:
        model.save(output / MODEL_FILE)
        (output / METRICS_FILE).write_text(json.dumps(summary, indent=2))
    return summary


@contextlib.contextmanager
def _dtype_policy(name):
    """Set the global Keras dtype policy to `name` (None: leave it)."""
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _fingerprint(config, preprocessor):
    """What a resumed run must share with the checkpoint's run.

    The learning rate may change (to recover from a divergence).
    """
    fingerprint = json.loads(json.dumps(config))
    fingerprint["preset"].pop("learning_rate", None)
    fingerprint["vocabulary_sizes"] = list(preprocessor.vocabulary_sizes)
    return fingerprint


def _checkpoint_note(checkpoint):
    if checkpoint is None:
        return ""
    if checkpoint.last_saved_step is None:
        return (
            f"No checkpoint was written to {checkpoint.directory} before "
            "the divergence."
        )
    return (
        f"The last good checkpoint (step {checkpoint.last_saved_step}) is "
        f"kept in {checkpoint.directory}: rerun with a lower learning rate "
        "to resume from it, or delete it to start over."
    )


def _interaction_name(interaction):
    if isinstance(interaction, keras.layers.Layer):
        return interaction.__class__.__name__
    return str(interaction)


def load_trained(model_dir):
    """Load `(model, preprocessor, config)` from a trained model directory."""
    model_dir = pathlib.Path(model_dir)
    model_file = model_dir / MODEL_FILE
    if not model_file.is_file():
        raise FileNotFoundError(
            f"No trained model in {model_dir}: {MODEL_FILE} is missing "
            "(write one with `adrec train --output DIR`)."
        )
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    model = keras.saving.load_model(model_file)
    preprocessor = adrec_data.FeaturePreprocessor.load_artifacts(
        model_dir / PREPROCESSING_DIR
    )
    return model, preprocessor, config


def evaluate_ranking(model_dir, data, batch_size=1024, on_bad_lines="error"):
    """Metrics of a trained model on every row of `data` (`KIND:PATH`).

    Returns:
        dict with `auc`, `logloss`, `accuracy`, `examples` and
        `skipped_lines`.
    """
    model, preprocessor, config = load_trained(model_dir)
    kind, paths = parse_data_spec(data)
    trained_kind = config["data"]["kind"]
    if kind != trained_kind:
        raise ValueError(
            f"The model in {model_dir} was trained on {trained_kind} data; "
            f"it cannot evaluate {kind} data."
        )
    raw = _raw_dataset(kind, paths, batch_size, on_bad_lines=on_bad_lines)
    dataset = adrec_data.preprocess(raw, preprocessor)
    with adrec_data.raise_data_format_errors():
        metrics = evaluate_model(model, dataset)
    stats = getattr(raw, "read_stats", None)
    metrics["skipped_lines"] = stats.skipped_lines if stats is not None else 0
    return metrics
