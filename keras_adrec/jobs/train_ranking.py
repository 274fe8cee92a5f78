"""Train a ranking model on Criteo or Avazu files: `train_ranking`.

This is what `adrec train` runs for ranking data, usable from Python too:
`train_ranking(TrainRankingSettings(data=..., output=..., preset=...))`.
It writes a model directory (`keras_adrec.training.ModelDirectory`) whose
`metrics.json` holds `auc`, `logloss`, `accuracy`, `calibration` (`ece`,
`predicted_ctr`, `observed_ctr`) and, for a table whose schema names a
group column, `gauc` on validation, plus `steps`,
  `steps_to_target` (or null), `samples_per_sec`, the strategy and its
  replica count, the learning rate used, the mixed-precision policy and
  `resumed_from_step`.

Scaling out and surviving faults (see `keras_adrec.training.distribution`
for batch-size and learning-rate semantics; the settings are those of
`TrainRankingSettings`):

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

import dataclasses
import json
import math
import time

import keras
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.jobs import settings as checks
from keras_adrec.models.presets import RankingPreset
from keras_adrec.models.presets import get_preset
from keras_adrec.models.sequential_presets import SequentialPreset
from keras_adrec.training import distribution
from keras_adrec.training.build import MIXED_PRECISION_POLICIES
from keras_adrec.training.build import build_ranking_model
from keras_adrec.training.build import dtype_policy
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
from keras_adrec.training.table_model import build_table_model
from keras_adrec.training.training_checkpoint import TrainingCheckpoint

DEFAULT_CHECKPOINT_EVERY = 100
SPLIT_MODES = ("time", "random")
BAD_LINES = ("error", "skip")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainRankingSettings:
    """Everything `train_ranking` needs, checked on creation.

    Args:
        data: str. `"KIND:PATH"` (kind `criteo` or `avazu`).
        output: str or path. The model directory to write.
        preset: `keras_adrec.models.presets.RankingPreset`. The model and
            its training settings (interaction, batch size, epochs,
            learning rate...); build it with `get_preset("rm1", ...)` or
            `keras_adrec.training.build.resolve_fields`. Defaults to RM1.
        val_data: str or None. `"KIND:PATH"` of validation files;
            otherwise the last `val_fraction` of `data` (time order) is
            validation.
        val_fraction: float in (0, 1). Defaults to `0.2`.
        split_mode: `"time"` or `"random"`, the split of `data` without
            `val_data`.
        on_bad_lines: `"error"` or `"skip"`.
        target_auc: float in (0, 1] or None. Stop when validation AUC
            reaches it.
        eval_every: int or None. Evaluate every this many steps (also at
            the end).
        seed: int >= 0. Seed for weights, dropout and the random split.
        verbose: bool. Show the Keras progress bar and evaluation lines.
        strategy: `"default"`, `"mirrored"`, `"multiworker"` or a
            `tf.distribute.Strategy`.
        checkpoint_dir: str or None. Folder of step checkpoints to resume
            from and write.
        checkpoint_every: int > 0. Steps between checkpoints.
        mixed_precision: `"off"`, `"float16"` or `"bfloat16"`.
        overwrite: bool. Replace a finished run in `output`. The run is
            written beside `output` and renamed into place when it ends;
            a failed run leaves `output` as it was.
        schema: str or None. A schema file (`keras_adrec.data.TableSchema`,
            docs/schema.md) naming the columns of `parquet:` or `csv:`
            data; required for those kinds, refused for the others.

    Example:

    ```python
    from keras_adrec.jobs.train_ranking import TrainRankingSettings
    from keras_adrec.jobs.train_ranking import train_ranking

    train_ranking(TrainRankingSettings(
        data="criteo:train.txt", output="run",
        preset=keras_adrec.models.get_preset("rm1", interaction="dot")))
    ```
    """

    data: str
    output: object
    preset: RankingPreset = dataclasses.field(
        default_factory=lambda: get_preset("rm1")
    )
    val_data: str | None = None
    val_fraction: float = 0.2
    split_mode: str = "time"
    on_bad_lines: str = "error"
    target_auc: float | None = None
    eval_every: int | None = None
    seed: int = 0
    verbose: bool = True
    strategy: object = "default"
    checkpoint_dir: str | None = None
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    mixed_precision: str = "off"
    overwrite: bool = False
    schema: str | None = None

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Check every setting; raise naming the first bad one."""
        checks.check_type("data", self.data, str, "a KIND:PATH string")
        if isinstance(self.preset, SequentialPreset) or not isinstance(
            self.preset, RankingPreset
        ):
            raise TypeError(
                "`preset` must be a RankingPreset (rm1-rm3). Received: "
                f"preset={getattr(self.preset, 'name', self.preset)!r}"
            )
        checks.check_fraction("val_fraction", self.val_fraction)
        checks.check_choice("split_mode", self.split_mode, SPLIT_MODES)
        checks.check_choice("on_bad_lines", self.on_bad_lines, BAD_LINES)
        checks.check_fraction(
            "target_auc", self.target_auc, closed_right=True, optional=True
        )
        checks.check_int("eval_every", self.eval_every, 1, optional=True)
        checks.check_int("seed", self.seed, 0)
        checks.check_int("checkpoint_every", self.checkpoint_every, 1)
        checks.check_choice(
            "mixed_precision", self.mixed_precision, MIXED_PRECISION_POLICIES
        )
        if self.schema is not None:
            checks.check_type("schema", self.schema, str, "a schema file path")


def train_ranking(settings):
    """Train a ranking model and write the model directory.

    Args:
        settings: a `TrainRankingSettings`.

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
    fields = settings.preset
    data = settings.data
    output = settings.output
    val_data = settings.val_data
    val_fraction = settings.val_fraction
    split_mode = settings.split_mode
    on_bad_lines = settings.on_bad_lines
    seed = settings.seed
    verbose = settings.verbose
    mixed_precision = settings.mixed_precision
    checkpoint_dir = settings.checkpoint_dir
    strategy = settings.strategy
    kind, paths = adrec_data.parse_data_spec(data, task="ranking")
    table = _table_schema(kind, settings.schema)
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
        if table is None:
            overlap = check_validation_overlap(
                paths, val_paths, header=kind == "avazu"
            )
    if isinstance(strategy, str) or strategy is None:
        strategy = distribution.make_strategy(strategy)
    chief = distribution.is_chief(strategy)
    keras.utils.set_random_seed(seed)
    inputs = [*paths, *(val_paths or []), checkpoint_dir]
    with staged_output(
        output, overwrite=settings.overwrite, enabled=chief, inputs=inputs
    ) as path:
        run = ModelDirectory(path)

        if table is not None:
            loaded = adrec_data.load_table_data(
                data,
                table,
                val_data=val_data,
                val_fraction=val_fraction,
                split_mode=split_mode,
                min_frequency=fields.min_frequency,
                max_index_range=fields.max_index_range,
                batch_size=fields.batch_size,
            )
        else:
            loaded = adrec_data.load_ranking_data(
                data,
                val_data=val_data,
                val_fraction=val_fraction,
                split_mode=split_mode,
                seed=seed,
                on_bad_lines=on_bad_lines,
                min_frequency=fields.min_frequency,
                max_index_range=fields.max_index_range,
                batch_size=fields.batch_size,
            )
        if chief:
            loaded.preprocessor.save_artifacts(run.preprocessing_path)
            if loaded.multi_hot_lookup is not None:
                loaded.multi_hot_lookup.save_artifacts(run.preprocessing_path)

        with strategy.scope(), dtype_policy(mixed_precision):
            batches = int(loaded.train.cardinality())
            train_batches = loaded.train
            if batches < 0 and loaded.train_rows is not None:
                # A stream: its length is the rows the vocabulary fit read
                # (the same rows, bad lines skipped alike). Declared, so
                # the progress bar shows the steps.
                batches = -(-loaded.train_rows // fields.batch_size)
                train_batches = train_batches.apply(
                    tf.data.experimental.assert_cardinality(batches)
                )
            if loaded.multi_hot_lookup is not None:
                model = build_table_model(
                    fields,
                    loaded.vocabulary_sizes,
                    loaded.num_dense,
                    loaded.multi_hot_lookup.vocabulary_sizes,
                    table.combiner,
                )
            else:
                model = build_ranking_model(
                    fields,
                    loaded.vocabulary_sizes,
                    loaded.num_dense,
                    auc_metric=True,
                    # Graph or XLA, whichever `CPU_STEP_TIMES` says trains
                    # these steps faster; unknown length (hashing mode)
                    # counts as long.
                    jit_compile="fastest",
                    steps=batches * fields.epochs if batches >= 0 else None,
                )
            model.optimizer.build(model.trainable_variables)
        logger = ResumableConvergenceLogger(
            loaded.val,
            eval_every=settings.eval_every,
            target_auc=settings.target_auc,
            curve_path=str(run.curve_path) if chief else None,
            batch_size=fields.batch_size,
            verbose=verbose and chief,
        )
        config = {
            "data": {"kind": kind, "paths": [str(p) for p in paths]},
            "val_data": [str(p) for p in val_paths] if val_paths else None,
            "val_fraction": None if val_paths else val_fraction,
            "split_mode": None if val_paths else split_mode,
            "seed": seed,
            "preset": fields.to_dict(),
            "on_bad_lines": on_bad_lines,
            "mixed_precision": mixed_precision,
        }
        if table is not None:
            config["schema"] = table.to_dict()
        checkpoint = None
        start_step = 0
        if checkpoint_dir:
            checkpoint = TrainingCheckpoint(
                checkpoint_dir,
                save_every=settings.checkpoint_every,
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
        train_ds = train_batches.repeat(fields.epochs).skip(start_step)
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
                "preset": fields.name,
                "interaction": fields.interaction,
                "seed": seed,
                "wall_seconds": wall,
                "skipped_lines": loaded.skipped_lines(),
                "strategy": distribution.strategy_name(strategy),
                "num_replicas": strategy.num_replicas_in_sync,
                "batch_size": fields.batch_size,
                "learning_rate": fields.learning_rate,
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


def _table_schema(kind, schema_path):
    """The `TableSchema` of a `parquet:`/`csv:` run, None for the others."""
    tables = ("parquet", "csv")
    if schema_path is None:
        if kind in tables:
            raise ValueError(
                f"{kind}: data needs a schema file naming its columns "
                "(--schema schema.json; see docs/schema.md)."
            )
        return None
    if kind not in tables:
        raise ValueError(
            f"A schema file describes parquet: or csv: data, not {kind}: "
            "data (its columns are known)."
        )
    return adrec_data.load_table_schema(schema_path)


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
