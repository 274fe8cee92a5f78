"""Train and evaluate a ranking model on Criteo or Avazu files.

This is what `adrec train` and `adrec evaluate` run, usable from Python too.
A trained model directory holds:

- `model.keras`: the Keras model (ids in, probability out);
- `preprocessing/`: the fitted `FeaturePreprocessor` artifacts;
- `config.json`: data kind, preset fields, interaction, seed and split;
- `curve.csv`: step, train loss, val AUC, val logloss, val accuracy, time;
- `metrics.json`: `auc`, `logloss`, `accuracy` on validation, plus `steps`,
  `steps_to_target` (or null) and `samples_per_sec`.
"""

import json
import os
import pathlib
import time

import keras
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.models.presets import get_preset
from keras_adrec.models.ranking_model import RankingModel
from keras_adrec.training.convergence_logger import ConvergenceLogger
from keras_adrec.training.metrics import evaluate_model

DATA_KINDS = ("criteo", "avazu")
MODEL_FILE = "model.keras"
PREPROCESSING_DIR = "preprocessing"
CONFIG_FILE = "config.json"
CURVE_FILE = "curve.csv"
METRICS_FILE = "metrics.json"
# Files smaller than this are cached in memory after preprocessing.
_CACHE_BYTES = 512 * 1024 * 1024


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
        batch_size: int; defaults to the preset's.

    Returns:
        The dict written to `metrics.json`.
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
    fields = get_preset(preset, **(overrides or {}))
    if interaction is not None:
        fields["interaction"] = interaction
    if batch_size is not None:
        fields["batch_size"] = int(batch_size)
    if epochs is not None:
        fields["epochs"] = int(epochs)
    keras.utils.set_random_seed(seed)
    output = pathlib.Path(output)
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
    preprocessor.save_artifacts(output / PREPROCESSING_DIR)

    model = RankingModel.from_preset(
        fields,
        vocabulary_sizes=preprocessor.vocabulary_sizes,
        num_dense=adrec_data.SCHEMAS[kind].num_dense,
    )
    model.compile(
        optimizer=make_optimizer(fields["optimizer"], fields["learning_rate"]),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    logger = ConvergenceLogger(
        val_ds,
        eval_every=eval_every,
        target_auc=target_auc,
        curve_path=str(output / CURVE_FILE),
        batch_size=fields["batch_size"],
        verbose=verbose,
    )
    config = {
        "data": {"kind": kind, "paths": [str(p) for p in paths]},
        "val_data": [str(p) for p in val_paths] if val_paths else None,
        "val_fraction": None if val_paths else val_fraction,
        "split_mode": None if val_paths else split_mode,
        "seed": seed,
        "preset": fields,
        "on_bad_lines": on_bad_lines,
    }
    (output / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    start = time.perf_counter()
    with adrec_data.raise_data_format_errors():
        model.fit(
            train_ds,
            epochs=fields["epochs"],
            callbacks=[logger],
            verbose=1 if verbose else 0,
            shuffle=False,
        )
    wall = time.perf_counter() - start
    model.save(output / MODEL_FILE)
    summary = logger.summary()
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
        }
    )
    (output / METRICS_FILE).write_text(json.dumps(summary, indent=2))
    return summary


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
