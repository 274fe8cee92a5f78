"""Train a ranking model on Criteo or Avazu files: `train_ranking`.

This is what `adrec train` runs for ranking data, usable from Python too.
It writes a model directory (`keras_adrec.training.ModelDirectory`) whose
`metrics.json` holds `auc`, `logloss`, `accuracy` on validation, plus `steps`,
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

import json
import math
import time

import keras

from keras_adrec import data as adrec_data
from keras_adrec.training import distribution
from keras_adrec.training.build import MIXED_PRECISION_POLICIES
from keras_adrec.training.build import build_ranking_model
from keras_adrec.training.build import dtype_policy
from keras_adrec.training.build import resolve_fields
from keras_adrec.training.build import streamed_epochs
from keras_adrec.training.custom_loop import train_custom_loop
from keras_adrec.training.model_directory import ModelDirectory
from keras_adrec.training.model_directory import staged_output
from keras_adrec.training.nan_guard import NanGuard
from keras_adrec.training.resumable_convergence_logger import (
    ResumableConvergenceLogger,
)
from keras_adrec.training.run_checks import LabelCounter
from keras_adrec.training.run_checks import add_warning
from keras_adrec.training.run_checks import check_summary
from keras_adrec.training.run_checks import check_validation_overlap
from keras_adrec.training.run_checks import strict_metrics
from keras_adrec.training.training_checkpoint import TrainingCheckpoint

DEFAULT_CHECKPOINT_EVERY = 100


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
    overwrite=False,
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
        overwrite: bool. Replace a finished run in `output`. The run is
            written beside `output` and renamed into place when it ends;
            a failed run leaves `output` as it was.

    Returns:
        The dict written to `metrics.json`.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
        keras_adrec.training.run_checks.RunCheckError: no step trained.
        keras_adrec.training.run_checks.ValidationOverlapError: `val_data`
            is the training data (same file or same content).
        keras_adrec.training.model_directory.OutputInUseError: another
            run is writing `output`.
        keras_adrec.training.model_directory.RunExistsError: `output`
            holds a run and `overwrite` is False.
    """
    kind, paths = adrec_data.parse_data_spec(data, task="ranking")
    val_paths = None
    overlap = []
    if val_data:
        val_kind, val_paths = adrec_data.parse_data_spec(
            val_data, task="ranking"
        )
        if val_kind != kind:
            raise ValueError(
                f"--val-data kind {val_kind!r} differs from --data kind "
                f"{kind!r}."
            )
        overlap = check_validation_overlap(
            paths, val_paths, header=kind == "avazu"
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
    inputs = [*paths, *(val_paths or []), checkpoint_dir]
    with staged_output(
        output, overwrite=overwrite, enabled=chief, inputs=inputs
    ) as path:
        run = ModelDirectory(path)

        loaded = adrec_data.load_ranking_data(
            data,
            val_data=val_data,
            val_fraction=val_fraction,
            split_mode=split_mode,
            seed=seed,
            on_bad_lines=on_bad_lines,
            min_frequency=fields["min_frequency"],
            max_index_range=fields["max_index_range"],
            batch_size=fields["batch_size"],
        )
        if chief:
            loaded.preprocessor.save_artifacts(run.preprocessing_path)

        with strategy.scope(), dtype_policy(mixed_precision):
            batches = int(loaded.train.cardinality())
            if batches < 0 and loaded.train_rows is not None:
                # A stream: its length is the rows the vocabulary fit read.
                batches = -(-loaded.train_rows // fields["batch_size"])
            model = build_ranking_model(
                fields,
                loaded.vocabulary_sizes,
                loaded.num_dense,
                auc_metric=True,
                # Graph or XLA, whichever trains these steps faster
                # (measured); unknown length (hashing mode) counts as long.
                jit_compile="fastest",
                steps=batches * fields["epochs"] if batches >= 0 else None,
            )
            model.optimizer.build(model.trainable_variables)
        logger = ResumableConvergenceLogger(
            loaded.val,
            eval_every=eval_every,
            target_auc=target_auc,
            curve_path=str(run.curve_path) if chief else None,
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
                fingerprint=_fingerprint(config, loaded.preprocessor),
                trackers={"logger": logger},
                is_chief=chief,
                task_label=distribution.task_label(strategy),
            )
            start_step = checkpoint.restore(model)
        guard = NanGuard(initial_step=start_step)
        callbacks = [guard, logger] + ([checkpoint] if checkpoint else [])
        if chief:
            run.write_config(config)
        # One stream of batches over every epoch, so a resumed run skips
        # exactly the steps already trained, wherever they end.
        train_ds = loaded.train.repeat(fields["epochs"]).skip(start_step)
        labels = None
        if distribution.strategy_name(strategy) == "default":
            # One device: count the training labels as they stream by.
            labels = LabelCounter()
            train_ds = labels.watch(train_ds)
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
                    with streamed_epochs():
                        model.fit(
                            train_ds,
                            epochs=1,
                            callbacks=callbacks,
                            verbose=1 if verbose else 0,
                            shuffle=False,
                        )
        wall = time.perf_counter() - start
        if guard.stopped_step is not None:
            raise FloatingPointError(
                guard.message(_checkpoint_note(checkpoint))
            )
        summary = logger.summary()
        if summary["logloss"] is not None and not math.isfinite(
            summary["logloss"]
        ):
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
                "skipped_lines": loaded.skipped_lines(),
                "strategy": distribution.strategy_name(strategy),
                "num_replicas": strategy.num_replicas_in_sync,
                "batch_size": fields["batch_size"],
                "learning_rate": fields["learning_rate"],
                "mixed_precision": mixed_precision,
                "resumed_from_step": start_step,
            }
        )
        if labels is not None:
            overlap += labels.warnings("training")
        for warning in overlap:
            add_warning(summary, warning)
        summary = strict_metrics(check_summary(summary))
        if chief:
            run.save_model(model)
            run.write_metrics(summary)
        return summary


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
