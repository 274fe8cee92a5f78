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

import time

import keras

from keras_adrec import data as adrec_data
from keras_adrec.training.build import build_sequential_model
from keras_adrec.training.build import resolve_fields
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


def train_sequential(
    path,
    output,
    preset="rm4",
    interaction=None,
    epochs=None,
    target_auc=None,
    eval_every=None,
    seed=0,
    verbose=True,
    overrides=None,
    batch_size=None,
    on_bad_lines="error",
    preparation=None,
    overwrite=False,
):
    """Train a sequential model on a Taobao `UserBehavior.csv` file.

    Args:
        path: path of the events file.
        output: model directory to write.
        preset: `"rm4"` (tsl), `"rm5"` (mha), `"rm6"` (rnn) or `"rm7"`
            (transformer).
        interaction: per-event interaction name; defaults to the preset's.
        epochs, target_auc, eval_every, seed, verbose, batch_size: as in
            `train_ranking`.
        overrides: dict of preset fields to replace.
        on_bad_lines: `"error"` or `"skip"`.
        preparation: dict of `prepare_taobao` settings overriding
            `PREPARATION_DEFAULTS`.
        overwrite: bool. Replace a finished run in `output` (written
            beside it and renamed into place, as `train_ranking` does).

    Returns:
        The dict written to `metrics.json`.
    """
    fields = resolve_fields(
        preset,
        overrides,
        interaction=interaction,
        batch_size=batch_size,
        epochs=epochs,
    )
    if "sequence_layer" not in fields:
        raise ValueError(
            f"Preset {preset!r} is not a sequential preset; use rm4-rm7 "
            "with taobao data."
        )
    settings = dict(PREPARATION_DEFAULTS)
    settings.update(preparation or {})
    settings["history_length"] = fields.get(
        "history_length", settings["history_length"]
    )
    keras.utils.set_random_seed(seed)
    with staged_output(output, overwrite=overwrite, inputs=[path]) as staging:
        run = ModelDirectory(staging)

        split = adrec_data.prepare_taobao(
            str(path), seed=seed, on_bad_lines=on_bad_lines, **settings
        )
        split.vocabulary.save_artifacts(run.preprocessing_path)
        train = split.train.to_dataset(
            fields["batch_size"], shuffle=True, seed=seed
        )
        val = split.validation.to_dataset(4096)
        model = build_sequential_model(
            fields, split.vocabulary.vocabulary_sizes, auc_metric=True
        )
        logger = ConvergenceLogger(
            val,
            eval_every=eval_every,
            target_auc=target_auc,
            curve_path=str(run.curve_path),
            batch_size=fields["batch_size"],
            verbose=verbose,
        )
        config = {
            "data": {"kind": "taobao", "paths": [str(path)]},
            "preparation": settings,
            "cut_time": int(split.cut_time),
            "seed": seed,
            "preset": fields,
            "on_bad_lines": on_bad_lines,
        }
        run.write_config(config)
        start = time.perf_counter()
        with streamed_epochs():
            model.fit(
                train,
                epochs=fields["epochs"],
                callbacks=[logger],
                verbose=1 if verbose else 0,
                shuffle=False,
            )
        summary = logger.summary()
        summary.update(
            {
                "data_kind": "taobao",
                "preset": fields["name"],
                "interaction": str(fields["interaction"]),
                "sequence_layer": str(fields["sequence_layer"]),
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
