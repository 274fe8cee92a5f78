"""Train and evaluate a sequential (TBSM-style) model on Taobao events.

What `adrec train --data taobao:PATH --preset rm4` and `adrec evaluate`
run for Taobao. The model directory has the same layout as the ranking
job's (`keras_adrec.training.ModelDirectory`), with the Taobao vocabularies in
`preprocessing/` and the preparation settings in `config.json`.

Points come from `keras_adrec.data.prepare_taobao`: 20 history events and a
target, one random-item negative per positive, and a cut in target time
(70% of windows before it train, the rest validate; no training point uses
an event after the cut). `adrec evaluate` prepares the given file with the
saved settings and vocabularies and scores its validation points: the
windows whose target falls after that file's cut.
"""

import dataclasses
import time

import keras

from keras_adrec import data as adrec_data
from keras_adrec.jobs import settings as checks
from keras_adrec.models.presets import get_preset
from keras_adrec.models.sequential_presets import SequentialPreset
from keras_adrec.training.build import build_sequential_model
from keras_adrec.training.build import streamed_epochs
from keras_adrec.training.convergence_logger import ConvergenceLogger
from keras_adrec.training.model_directory import ModelDirectory
from keras_adrec.training.model_directory import staged_output
from keras_adrec.training.run_checks import add_warning
from keras_adrec.training.run_checks import check_summary
from keras_adrec.training.run_checks import label_warnings
from keras_adrec.training.run_checks import strict_metrics

# Settings of prepare_taobao that a model directory records and reuses.
PREPARATION_DEFAULTS = {
    "history_length": 20,
    "stride": 1,
    "max_points_per_user": None,
    "negative_ratio": 1,
    "validation_fraction": 0.3,
    "time_feature": "log_elapsed_hours",
}
BAD_LINES = ("error", "skip")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainSequentialSettings:
    """Everything `train_sequential` needs, checked on creation.

    Args:
        path: str or path. The Taobao `UserBehavior.csv` events file.
        output: str or path. The model directory to write.
        preset: `keras_adrec.models.sequential_presets.SequentialPreset`:
            `"rm4"` (tsl), `"rm5"` (mha), `"rm6"` (rnn) or `"rm7"`
            (transformer), with any changes. Defaults to RM4.
        target_auc, eval_every, seed, verbose, on_bad_lines: as in
            `keras_adrec.jobs.train_ranking.TrainRankingSettings`.
        preparation: dict or None. `prepare_taobao` settings overriding
            `PREPARATION_DEFAULTS` (the preset's `history_length` wins).
        overwrite: bool. Replace a finished run in `output` (written
            beside it and renamed into place, as `train_ranking` does).
    """

    path: object
    output: object
    preset: SequentialPreset = dataclasses.field(
        default_factory=lambda: get_preset("rm4")
    )
    target_auc: float | None = None
    eval_every: int | None = None
    seed: int = 0
    verbose: bool = True
    on_bad_lines: str = "error"
    preparation: dict | None = None
    overwrite: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Check every setting; raise naming the first bad one."""
        if not isinstance(self.preset, SequentialPreset):
            raise ValueError(
                f"Preset {getattr(self.preset, 'name', self.preset)!r} is "
                "not a sequential preset; use rm4-rm7 with taobao data."
            )
        checks.check_fraction(
            "target_auc", self.target_auc, closed_right=True, optional=True
        )
        checks.check_int("eval_every", self.eval_every, 1, optional=True)
        checks.check_int("seed", self.seed, 0)
        checks.check_choice("on_bad_lines", self.on_bad_lines, BAD_LINES)
        unknown = sorted(
            set(self.preparation or {}) - set(PREPARATION_DEFAULTS)
        )
        if unknown:
            raise ValueError(
                f"Unknown preparation setting(s) {', '.join(unknown)}. "
                f"Known: {', '.join(PREPARATION_DEFAULTS)}."
            )


def train_sequential(settings):
    """Train a sequential model on a Taobao events file.

    Args:
        settings: a `TrainSequentialSettings`.

    Returns:
        The dict written to `metrics.json`.
    """
    fields = settings.preset
    path = settings.path
    seed = settings.seed
    verbose = settings.verbose
    on_bad_lines = settings.on_bad_lines
    preparation = dict(PREPARATION_DEFAULTS)
    preparation.update(settings.preparation or {})
    preparation["history_length"] = fields.history_length
    keras.utils.set_random_seed(seed)
    with staged_output(
        settings.output, overwrite=settings.overwrite, inputs=[path]
    ) as staging:
        run = ModelDirectory(staging)

        split = adrec_data.prepare_taobao(
            str(path), seed=seed, on_bad_lines=on_bad_lines, **preparation
        )
        split.vocabulary.save_artifacts(run.preprocessing_path)
        train = split.train.to_dataset(
            fields.batch_size, shuffle=True, seed=seed
        )
        val = split.validation.to_dataset(4096)
        model = build_sequential_model(
            fields, split.vocabulary.vocabulary_sizes, auc_metric=True
        )
        logger = ConvergenceLogger(
            val,
            eval_every=settings.eval_every,
            target_auc=settings.target_auc,
            curve_path=str(run.curve_path),
            batch_size=fields.batch_size,
            verbose=verbose,
        )
        config = {
            "data": {"kind": "taobao", "paths": [str(path)]},
            "preparation": preparation,
            "cut_time": int(split.cut_time),
            "seed": seed,
            "preset": fields.to_dict(),
            "on_bad_lines": on_bad_lines,
        }
        run.write_config(config)
        start = time.perf_counter()
        with streamed_epochs():
            model.fit(
                train,
                epochs=fields.epochs,
                callbacks=[logger],
                verbose=1 if verbose else 0,
                shuffle=False,
            )
        summary = logger.summary()
        summary.update(
            {
                "data_kind": "taobao",
                "preset": fields.name,
                "interaction": fields.interaction,
                "sequence_layer": fields.sequence_layer,
                "seed": seed,
                "wall_seconds": time.perf_counter() - start,
                "train_points": len(split.train),
                "val_points": len(split.validation),
            }
        )
        for warning in label_warnings(split.train.label, "training"):
            add_warning(summary, warning)
        summary = strict_metrics(check_summary(summary))
        run.save_model(model)
        run.write_metrics(summary)
        return summary
