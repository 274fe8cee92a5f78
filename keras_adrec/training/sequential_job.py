"""Train and evaluate a sequential (TBSM-style) model on Taobao events.

What `adrec train --data taobao:PATH --preset rm4` and `adrec evaluate`
run for Taobao. The model directory has the same layout as the ranking
job's (`keras_adrec.training.ranking_job`), with the Taobao vocabularies in
`preprocessing/` and the preparation settings in `config.json`.

Points come from `keras_adrec.data.prepare_taobao`: 20 history events and a
target, one random-item negative per positive, and a cut in target time
(70% of windows before it train, the rest validate; no training point uses
an event after the cut). `adrec evaluate` prepares the given file with the
saved settings and vocabularies and scores its validation points: the
windows whose target falls after that file's cut.
"""

import json
import pathlib
import time

import keras

from keras_adrec import data as adrec_data
from keras_adrec.models import SequentialRankingModel
from keras_adrec.models.presets import get_preset
from keras_adrec.training.convergence_logger import ConvergenceLogger
from keras_adrec.training.metrics import evaluate_model
from keras_adrec.training.ranking_job import CONFIG_FILE
from keras_adrec.training.ranking_job import CURVE_FILE
from keras_adrec.training.ranking_job import METRICS_FILE
from keras_adrec.training.ranking_job import MODEL_FILE
from keras_adrec.training.ranking_job import PREPROCESSING_DIR
from keras_adrec.training.ranking_job import make_optimizer

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

    Returns:
        The dict written to `metrics.json`.
    """
    fields = get_preset(preset, **(overrides or {}))
    if "sequence_layer" not in fields:
        raise ValueError(
            f"Preset {preset!r} is not a sequential preset; use rm4-rm7 "
            "with taobao data."
        )
    if interaction is not None:
        fields["interaction"] = interaction
    if batch_size is not None:
        fields["batch_size"] = int(batch_size)
    if epochs is not None:
        fields["epochs"] = int(epochs)
    settings = dict(PREPARATION_DEFAULTS)
    settings.update(preparation or {})
    settings["history_length"] = fields.get(
        "history_length", settings["history_length"]
    )
    keras.utils.set_random_seed(seed)
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)

    split = adrec_data.prepare_taobao(
        str(path), seed=seed, on_bad_lines=on_bad_lines, **settings
    )
    split.vocabulary.save_artifacts(output / PREPROCESSING_DIR)
    train = split.train.to_dataset(
        fields["batch_size"], shuffle=True, seed=seed
    )
    val = split.validation.to_dataset(4096)
    model = SequentialRankingModel.from_preset(
        fields, vocabulary_sizes=split.vocabulary.vocabulary_sizes
    )
    model.compile(
        optimizer=make_optimizer(fields["optimizer"], fields["learning_rate"]),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    logger = ConvergenceLogger(
        val,
        eval_every=eval_every,
        target_auc=target_auc,
        curve_path=str(output / CURVE_FILE),
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
    (output / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    start = time.perf_counter()
    model.fit(
        train,
        epochs=fields["epochs"],
        callbacks=[logger],
        verbose=1 if verbose else 0,
        shuffle=False,
    )
    model.save(output / MODEL_FILE)
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
    (output / METRICS_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def evaluate_sequential(model_dir, path, on_bad_lines="error"):
    """Metrics of a trained sequential model on a Taobao events file.

    The file is prepared with the model's saved settings and vocabularies;
    its validation points (targets after its time cut) are scored.
    """
    model_dir = pathlib.Path(model_dir)
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    model = keras.saving.load_model(model_dir / MODEL_FILE)
    vocabulary = adrec_data.TaobaoVocabulary.load_artifacts(
        model_dir / PREPROCESSING_DIR
    )
    split = adrec_data.prepare_taobao(
        str(path),
        vocabulary=vocabulary,
        seed=config["seed"],
        on_bad_lines=on_bad_lines,
        **config["preparation"],
    )
    metrics = evaluate_model(model, split.validation.to_dataset(4096))
    metrics["points"] = len(split.validation)
    return metrics
