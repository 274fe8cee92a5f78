"""Prepared Taobao sequential points: model inputs plus raw fields."""

import dataclasses

import numpy as np

NUM_BEHAVIOR_IDS = 5
"""Behavior ids: 0 unknown (every target position), 1..4 pv, cart, fav, buy."""


@dataclasses.dataclass(frozen=True, eq=False)
class TaobaoPoints:
    """Points of the Taobao sequential task (TBSM layout), `T = L + 1`.

    Each point is `L` history events of one user followed by one target event
    (position `T - 1`). Model inputs are `sparse`, `dense`, optional
    `behavior` and `label`; the raw fields keep unmapped ids and timestamps
    for checks.

    Args:
        sparse: int32 `[P, T, 3]`. Per event: user, item, category indices
            (vocabulary-mapped, 0 = OOV); the user repeats along `T`.
        dense: float32 `[P, T, 1]`. The time feature of each event.
        label: float32 `[P, 1]`. 1 for the real next event, 0 for a negative.
        behavior: int32 `[P, T]` or None. Behavior id per event (see
            `NUM_BEHAVIOR_IDS`); the target position is always 0 (unknown),
            for positives and negatives alike.
        raw_user: int64 `[P]`. Raw user id.
        raw_item: int64 `[P, T]`. Raw item ids (the target is the negative
            item for negatives).
        raw_category: int64 `[P, T]`. Raw category ids.
        timestamp: int64 `[P, T]`. Unix seconds of each event; for a negative
            the target time is that of the real next event.
        true_next_item: int64 `[P]`. Raw item of the real next event (equal
            to `raw_item[:, -1]` for positives).
        vocabulary_sizes: list of 3 ints. Table sizes for user, item,
            category, the OOV index included.
    """

    sparse: np.ndarray
    dense: np.ndarray
    label: np.ndarray
    behavior: np.ndarray | None
    raw_user: np.ndarray
    raw_item: np.ndarray
    raw_category: np.ndarray
    timestamp: np.ndarray
    true_next_item: np.ndarray
    vocabulary_sizes: list

    @property
    def num_points(self):
        return len(self.label)

    def __len__(self):
        return self.num_points

    @property
    def sequence_length(self):
        """`T`: history length plus the target."""
        return self.sparse.shape[1]

    @property
    def features(self):
        """The model inputs: `{"sparse", "dense"}` and `"behavior"` if kept."""
        features = {"sparse": self.sparse, "dense": self.dense}
        if self.behavior is not None:
            features["behavior"] = self.behavior
        return features

    def to_dataset(self, batch_size, shuffle=False, seed=None):
        """A `tf.data.Dataset` of `(features, label)` batches.

        Args:
            batch_size: int. Points per batch (the last batch may be smaller).
            shuffle: bool. Shuffle all points, again on each iteration.
                Defaults to `False`.
            seed: int or None. Shuffle seed. Defaults to `None`.

        Returns:
            A dataset yielding `({"sparse": int32 [B, T, 3], "dense": float32
            [B, T, 1], ["behavior": int32 [B, T]]}, float32 [B, 1])`.
        """
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(
                "`batch_size` must be a positive int. Received: "
                f"batch_size={batch_size!r}"
            )
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices(
            (self.features, self.label)
        )
        if shuffle:
            dataset = dataset.shuffle(
                max(self.num_points, 1),
                seed=seed,
                reshuffle_each_iteration=True,
            )
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def select(self, indices):
        """The points at `indices` (an index array or boolean mask)."""
        indices = np.asarray(indices)
        return dataclasses.replace(
            self,
            sparse=self.sparse[indices],
            dense=self.dense[indices],
            label=self.label[indices],
            behavior=None if self.behavior is None else self.behavior[indices],
            raw_user=self.raw_user[indices],
            raw_item=self.raw_item[indices],
            raw_category=self.raw_category[indices],
            timestamp=self.timestamp[indices],
            true_next_item=self.true_next_item[indices],
        )
