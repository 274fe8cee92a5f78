"""The runs of `adrec compare`: its data, read and preprocessed once into
memory, one variant's training on it, and the target AUC read off the
curves."""

import math

import keras
import tensorflow as tf

from keras_adrec import data as adrec_data
from keras_adrec.training.build import build_ranking_model
from keras_adrec.training.convergence_logger import ConvergenceLogger
from keras_adrec.training.metrics import evaluate_model

# The default comparison (`adrec compare` with no data): the one place its
# settings live, chosen so that the whole run (5 interactions x 3 seeds)
# fits a few minutes on a 2-core machine while every interaction still
# learns within one epoch (the measurements behind the choice, and how far
# the curves are from flat, are in docs/compare.md):
# - cardinalities scaled to 1/100,000 of Criteo Kaggle's, floor 20 (largest
#   column 103 values): each value is seen hundreds of times in 45,000
#   rows, so the embeddings, which dominate the parameters, learn within
#   one epoch;
# - 6 days of 9,000 rows: days 0-4 train (45,000 rows, one epoch), day 5
#   validates; 900 further rows of each training day (10%) are held out to
#   measure the AUC on the training distribution;
# - the generator's default drift (shift strength 1);
# - batch 256 and SGD learning rate 0.3 (176 steps, 12 evaluations, one
#   every 14 steps): at RM1's 0.1 the curves rise more slowly, at 0.5
#   Ad-Rec diverges in some seeds.
DEFAULT_SYNTHETIC = {
    "rows_per_day": 9_000,
    "num_days": 6,
    "scale": 1e-5,
    "min_cardinality": 20,
    "shift_strength": 1.0,
}
DEFAULT_SYNTHETIC_ROWS = (
    DEFAULT_SYNTHETIC["rows_per_day"] * DEFAULT_SYNTHETIC["num_days"]
)
DEFAULT_DAYS = DEFAULT_SYNTHETIC["num_days"]
DEFAULT_SHIFT_STRENGTH = DEFAULT_SYNTHETIC["shift_strength"]
DEFAULT_HOLDOUT_FRACTION = 0.1
DEFAULT_SYNTHETIC_BATCH_SIZE = 256
DEFAULT_SYNTHETIC_LEARNING_RATE = 0.3
DEFAULT_EVALUATIONS = 12
TARGET_FRACTION = 0.95


def load_comparison_data(
    data=None,
    synthetic_rows=None,
    days=None,
    shift_strength=None,
    val_fraction=0.2,
    min_frequency=1,
    max_index_range=None,
    seed=0,
    holdout_fraction=DEFAULT_HOLDOUT_FRACTION,
):
    """Read, split and preprocess once, into memory.

    Args:
        data: `"KIND:PATH"`, or None for the embedded synthetic data.
        synthetic_rows: int, synthetic rows in all (training days plus the
            validation day; default `DEFAULT_SYNTHETIC_ROWS`).
        days: int, synthetic days (the last one validates; default
            `DEFAULT_DAYS`).
        shift_strength: float, the synthetic day-to-day drift (default
            `DEFAULT_SHIFT_STRENGTH`).
        val_fraction: float, validation share of `data` (time order).
        min_frequency, max_index_range: the preprocessing's.
        seed: int, the generator's seed.
        holdout_fraction: float, synthetic rows held out from each training
            day, as a share of its rows (same-distribution validation).

    Returns:
        A `keras_adrec.data.RankingData` held in memory.
    """
    common = {
        "val_fraction": val_fraction,
        "min_frequency": min_frequency,
        "max_index_range": max_index_range,
        "in_memory": True,
    }
    if data:
        return adrec_data.load_ranking_data(data, **common)
    settings = dict(DEFAULT_SYNTHETIC)
    days = int(days or settings["num_days"])
    rows = int(synthetic_rows or DEFAULT_SYNTHETIC_ROWS)
    settings.update(
        rows_per_day=max(1, rows // days),
        num_days=days,
        seed=seed,
    )
    if shift_strength is not None:
        settings["shift_strength"] = float(shift_strength)
    generator = adrec_data.SyntheticCriteo(**settings)
    holdout = int(settings["rows_per_day"] * holdout_fraction)
    return adrec_data.load_ranking_data(
        synthetic=generator, holdout_rows=holdout, **common
    )


def in_memory_datasets(loaded, batch_size, val_batch_size=4096):
    """`(train, val)` `tf.data` pipelines over a `RankingData` in memory."""
    train = (
        tf.data.Dataset.from_tensor_slices(loaded.train)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val = (
        tf.data.Dataset.from_tensor_slices(loaded.val)
        .batch(val_batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    return train, val


def train_variant(
    loaded, fields, seed, eval_every=None, target_auc=None, curve_path=None
):
    """Train one variant with one seed on in-memory data.

    Args:
        loaded: a `RankingData` in memory.
        fields: a `RankingPreset` (`variant_fields`).
        seed: int, weights and dropout seed.
        eval_every: int, steps between evaluations (and at the end).
        target_auc: float or None; training stops once reached.
        curve_path: optional CSV path for the convergence curve.

    Returns:
        `(model, summary)`: the `ConvergenceLogger` summary plus `curve`
        (step, val AUC and training seconds of every evaluation) and, when
        `loaded` has held-out rows, `holdout_auc` and `holdout_logloss`.
    """
    keras.utils.set_random_seed(seed)
    train, val = in_memory_datasets(loaded, fields.batch_size)
    model = build_ranking_model(
        fields,
        loaded.vocabulary_sizes,
        loaded.num_dense,
        # Graph or XLA, whichever trains these steps faster (measured).
        jit_compile="fastest",
        steps=int(train.cardinality()) * fields.epochs,
    )
    logger = ConvergenceLogger(
        val,
        eval_every=eval_every,
        target_auc=target_auc,
        curve_path=curve_path,
        batch_size=fields.batch_size,
    )
    model.fit(
        train,
        epochs=fields.epochs,
        callbacks=[logger],
        verbose=0,
        shuffle=False,
    )
    summary = logger.summary()
    summary["curve"] = logger.curve()
    if loaded.holdout is not None:
        holdout = tf.data.Dataset.from_tensor_slices(loaded.holdout).batch(4096)
        metrics = evaluate_model(model, holdout)
        summary["holdout_auc"] = metrics["auc"]
        summary["holdout_logloss"] = metrics["logloss"]
    return model, summary


def steps_to_target(curve, target):
    """`(step, train_seconds)` of the first evaluation at or above
    `target`, or `(None, None)`."""
    for point in curve:
        if point["val_auc"] is not None and point["val_auc"] >= target:
            return point["step"], point["train_seconds"]
    return None, None


def automatic_target(runs_by_variant, fraction=TARGET_FRACTION):
    """`0.5 + fraction * (best - 0.5)`: `best` the highest mean final
    validation AUC over the variants (runs that diverged left out)."""
    means = []
    for runs in runs_by_variant.values():
        finite = [
            r["auc"]
            for r in runs
            if r["logloss"] is not None and math.isfinite(r["logloss"])
        ]
        if finite:
            means.append(sum(finite) / len(finite))
    best = max(means, default=0.5)
    return 0.5 + fraction * (best - 0.5)
