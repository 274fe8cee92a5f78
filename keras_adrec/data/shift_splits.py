"""Shift-aware splits: training rows, same-period and later-period rows.

A model validated only on rows of its own training period is flattered:
in production it scores rows from later on. A `ShiftSplit` holds three
sets of preprocessed rows in memory:

- `train`: what the model fits on, and the only rows the vocabularies
  are fitted on;
- `same`: rows from the training period that no step trains on
  (same-period validation: where learning rates and remedies are chosen);
- `later`: rows from after the training period (evaluation only).

Builders, one per source:

- `criteo_shift_split`: the Criteo day-0 head (`train_head10k.txt`): rows
  1-8,000 train, rows 8,001-10,000 are the same period; the later period
  is a separate file of rows from later days (`later_days_2185.txt`).
- `positional_shift_split`: one file in time order (Avazu) or ordered by
  timestamp by its reader (MovieLens): the earliest `1 - later_fraction`
  of the rows are the training period, the rest the later period; a
  seeded random `same_fraction` of the training period is held out as
  the same period.
- `synthetic_shift_split`: a `SyntheticCriteo` generator: days 0..D-2
  train, the last day is the later period, further rows of each training
  day are the same period.
- `taobao_shift_split`: Taobao events, cut by timestamp as
  `prepare_taobao` cuts them (windows whose target is after the cut are
  the later period); each user's latest window before the cut (with its
  negatives) is the same period. Not a random share: a user's consecutive
  windows share all but one event, so a random window's target would sit
  in the history of the next, trained-on window; the latest one's target
  is in no training window. The vocabulary is `prepare_taobao`'s (fitted
  on every window before the cut, the held-out ones included: an id seen
  only there gets a row that never trains). It returns a
  `SequentialShiftSplit` of `TaobaoPoints`.

`ShiftSplit.ranking_data()` gives a `RankingData` whose `val` is the later
period and `holdout` the same period, the form the training helpers take.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_adrec.data import FeaturePreprocessor
from keras_adrec.data import RankingData
from keras_adrec.data import load_ranking_data
from keras_adrec.data import make_dataset
from keras_adrec.data import prepare_taobao
from keras_adrec.data import preprocess
from keras_adrec.data import schema_for
from keras_adrec.data.splits import time_split_sizes

_BATCH = 4096


@dataclasses.dataclass
class ShiftSplit:
    """Preprocessed rows of a training period and of a later period.

    Args:
        name: str. The data set, e.g. `"criteo"`.
        train: `(features, labels)`: a dict of numpy arrays (`"dense"`,
            `"sparse"`) and float32 labels `[N, 1]`.
        same: same-period rows no step trains on, in the same form.
        later: later-period rows, in the same form.
        preprocessor: the `FeaturePreprocessor` fitted on `train` only.
        schema: the `DatasetSchema` of the raw rows.
        description: str. One line: where each set comes from.
    """

    name: str
    train: tuple
    same: tuple
    later: tuple
    preprocessor: FeaturePreprocessor
    schema: object
    description: str

    @property
    def vocabulary_sizes(self):
        return list(self.preprocessor.vocabulary_sizes)

    def ranking_data(self):
        """A `RankingData` with `val` = later period and `holdout` = same
        period."""
        return RankingData(
            train=self.train,
            val=self.later,
            preprocessor=self.preprocessor,
            schema=self.schema,
            source={
                "synthetic": self.name.startswith("synthetic"),
                "kind": self.name,
                "split": self.description,
            },
            holdout=self.same,
            train_rows=len(self.train[1]),
        )

    def stats(self):
        """Rows, click rate and out-of-vocabulary share of each set.

        The OOV share is the fraction of categorical values that map to
        id 0 (unseen in training or rarer than `min_frequency`); None in
        hashing mode, where no value is out of vocabulary.
        """
        hashing = self.preprocessor.max_index_range is not None
        result = {}
        for part in ("train", "same", "later"):
            features, labels = getattr(self, part)
            result[part] = {
                "rows": int(len(labels)),
                "click_rate": float(np.mean(labels)),
                "oov_share": (
                    None if hashing else float(np.mean(features["sparse"] == 0))
                ),
            }
        return result


def read_raw(dataset):
    """All `(raw_features, label)` batches of a reader, as numpy arrays."""
    dense, categorical, labels = [], [], []
    for features, label in dataset:
        dense.append(features["dense"].numpy())
        categorical.append(features["categorical"].numpy())
        labels.append(label.numpy())
    if not labels:
        raise ValueError("The data yielded no rows.")
    return (
        {
            "dense": np.concatenate(dense),
            "categorical": np.concatenate(categorical),
        },
        np.concatenate(labels).reshape(-1, 1).astype("float32"),
    )


def take_rows(raw, rows):
    """The rows `rows` (indices) of raw arrays from `read_raw`."""
    features, labels = raw
    return {k: v[rows] for k, v in features.items()}, labels[rows]


def fit_shift_split(
    name,
    schema,
    train_raw,
    same_raw,
    later_raw,
    description,
    min_frequency=1,
    max_index_range=None,
):
    """Fit preprocessing on `train_raw` only and apply it to all three.

    Args:
        name: str. The data set.
        schema: `DatasetSchema` of the raw rows.
        train_raw, same_raw, later_raw: raw arrays (`read_raw`).
        description: str. One line on where each set comes from.
        min_frequency, max_index_range: the `FeaturePreprocessor`'s.

    Returns:
        A `ShiftSplit`.
    """
    preprocessor = FeaturePreprocessor.fit(
        _raw_dataset(train_raw),
        schema,
        min_frequency=min_frequency,
        max_index_range=max_index_range,
    )
    sets = [
        _to_arrays(preprocess(_raw_dataset(raw), preprocessor))
        for raw in (train_raw, same_raw, later_raw)
    ]
    return ShiftSplit(name, *sets, preprocessor, schema, description)


def criteo_shift_split(
    train_path,
    later_path,
    same_fraction=0.2,
    min_frequency=1,
    max_index_range=None,
):
    """Criteo: a time-ordered head of one period, and later-period rows.

    Args:
        train_path: the training-period file (`train_head10k.txt`): its
            first `1 - same_fraction` rows train, the rest are the same
            period (10,000 rows, 0.2: rows 1-8,000 and 8,001-10,000).
        later_path: rows from later days (evaluation only: no vocabulary
            is fitted on them).
        same_fraction: float in (0, 1). Defaults to `0.2`.
        min_frequency, max_index_range: the `FeaturePreprocessor`'s.

    Returns:
        A `ShiftSplit`.
    """
    head = read_raw(make_dataset("criteo", [str(train_path)], _BATCH))
    num = len(head[1])
    num_train, _ = time_split_sizes(num, same_fraction)
    later = read_raw(make_dataset("criteo", [str(later_path)], _BATCH))
    return fit_shift_split(
        "criteo",
        schema_for("criteo"),
        take_rows(head, np.arange(num_train)),
        take_rows(head, np.arange(num_train, num)),
        later,
        f"training period: the head file's rows 1-{num_train:,} train, "
        f"rows {num_train + 1:,}-{num:,} same period (file order); later "
        f"period: {len(later[1]):,} rows of a separate later-days file",
        min_frequency=min_frequency,
        max_index_range=max_index_range,
    )


def positional_shift_split(
    kind,
    path,
    later_fraction=0.2,
    same_fraction=0.2,
    seed=0,
    min_frequency=1,
    max_index_range=None,
):
    """One time-ordered file: the earliest rows train, the latest are later.

    Args:
        kind: str. A ranking data kind whose reader yields rows in time
            order (`"avazu"`: file order; `"movielens"`: by timestamp).
        path: the file.
        later_fraction: float in (0, 1). The latest share of all rows:
            the later period. Defaults to `0.2`.
        same_fraction: float in (0, 1). The share of the training period
            held out at random (numpy generator seeded by `seed`) as the
            same period. Defaults to `0.2`.
        seed: int. Draws the same-period rows. Defaults to `0`.
        min_frequency, max_index_range: the `FeaturePreprocessor`'s.

    Returns:
        A `ShiftSplit`.
    """
    for arg, value in (
        ("later_fraction", later_fraction),
        ("same_fraction", same_fraction),
    ):
        if not 0.0 < value < 1.0:
            raise ValueError(
                f"`{arg}` must lie in (0, 1). Received: {arg}={value}"
            )
    raw = read_raw(make_dataset(kind, [str(path)], _BATCH))
    num = len(raw[1])
    num_period, _ = time_split_sizes(num, later_fraction)
    is_same = np.random.default_rng(seed).random(num_period) < same_fraction
    train_rows = np.flatnonzero(~is_same)
    same_rows = np.flatnonzero(is_same)
    order = "timestamp" if kind == "movielens" else "file"
    return fit_shift_split(
        kind,
        schema_for(kind),
        take_rows(raw, train_rows),
        take_rows(raw, same_rows),
        take_rows(raw, np.arange(num_period, num)),
        f"in {order} order: the earliest {num_period:,} rows are the "
        f"training period ({len(train_rows):,} train, a random "
        f"{len(same_rows):,} (seed {seed}) same period), the latest "
        f"{num - num_period:,} the later period",
        min_frequency=min_frequency,
        max_index_range=max_index_range,
    )


def synthetic_shift_split(
    generator, same_rows, min_frequency=1, max_index_range=None
):
    """Synthetic drift: days 0..D-2 train, the last day is later.

    Args:
        generator: a `keras_adrec.data.SyntheticCriteo`.
        same_rows: int > 0. Further rows of each training day, held out
            as the same period.
        min_frequency, max_index_range: the `FeaturePreprocessor`'s.

    Returns:
        A `ShiftSplit` named `"synthetic"`.
    """
    loaded = load_ranking_data(
        synthetic=generator,
        holdout_rows=same_rows,
        min_frequency=min_frequency,
        max_index_range=max_index_range,
        in_memory=True,
    )
    return ShiftSplit(
        "synthetic",
        loaded.train,
        loaded.holdout,
        loaded.val,
        loaded.preprocessor,
        loaded.schema,
        f"{loaded.source['split']}; same period: {same_rows:,} further "
        "rows of each training day",
    )


@dataclasses.dataclass
class SequentialShiftSplit:
    """`TaobaoPoints` of a training period and of a later period.

    Args:
        name: str. `"taobao"`.
        train, same, later: `keras_adrec.data.TaobaoPoints`: training
            windows, each user's latest window before the cut, and windows
            whose target is after the cut.
        vocabulary: the `TaobaoVocabulary` of the windows before the cut.
        description: str. One line: where each set comes from.
    """

    name: str
    train: object
    same: object
    later: object
    vocabulary: object
    description: str

    @property
    def vocabulary_sizes(self):
        return list(self.vocabulary.vocabulary_sizes)

    def stats(self):
        """Points, positive share and OOV share (item ids of the events
        that map to 0) of each set."""
        result = {}
        for part in ("train", "same", "later"):
            points = getattr(self, part)
            result[part] = {
                "rows": int(points.num_points),
                "click_rate": float(np.mean(points.label)),
                "oov_share": float(np.mean(points.sparse[:, :, 1] == 0)),
            }
        return result


def taobao_shift_split(events, seed=0, **prepare_kwargs):
    """Taobao cut by timestamp; each user's last training window held out.

    Args:
        events: a `keras_adrec.data.TaobaoEvents`.
        seed: int. `prepare_taobao`'s negative sampling. Defaults to `0`.
        **prepare_kwargs: further `prepare_taobao` arguments
            (`max_points_per_user`, `validation_fraction`, ...).

    Returns:
        A `SequentialShiftSplit`.
    """
    split = prepare_taobao(events, seed=seed, **prepare_kwargs)
    target_time = split.train.timestamp[:, -1]
    users, user_index = np.unique(split.train.raw_user, return_inverse=True)
    latest = np.full(len(users), np.iinfo(np.int64).min)
    np.maximum.at(latest, user_index, target_time)
    is_same = target_time == latest[user_index]
    train = split.train.select(~is_same)
    same = split.train.select(is_same)
    return SequentialShiftSplit(
        "taobao",
        train,
        same,
        split.validation,
        split.vocabulary,
        f"prepare_taobao windows cut at timestamp {split.cut_time}: targets "
        f"after it are the later period ({split.validation.num_points:,} "
        "points); of the windows before it, each user's latest (with its "
        f"negatives) is the same period ({same.num_points:,} points, "
        f"{len(users):,} users), the rest train ({train.num_points:,} "
        "points)",
    )


def _raw_dataset(raw):
    features, labels = raw
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(_BATCH)


def _to_arrays(dataset):
    dense, sparse, labels = [], [], []
    for features, label in dataset:
        dense.append(features["dense"].numpy())
        sparse.append(features["sparse"].numpy())
        labels.append(label.numpy())
    return (
        {"dense": np.concatenate(dense), "sparse": np.concatenate(sparse)},
        np.concatenate(labels).reshape(-1, 1).astype("float32"),
    )
