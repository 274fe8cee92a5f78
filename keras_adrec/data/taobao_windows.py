"""The steps of `prepare_taobao`, one function each.

Per-user time order, the windows' targets, the time split, the most recent
windows per user, the negatives' item pool and draws, the vocabulary fitted
on the training points, and the final `TaobaoPoints` (see `taobao.py` for
the protocol).
"""

import numpy as np

from keras_adrec.data.taobao_points import TaobaoPoints
from keras_adrec.data.taobao_vocabulary import TaobaoVocabulary
from keras_adrec.data.taobao_vocabulary import sorted_position


def user_time_order(user, timestamp):
    """Stable order by (user, timestamp); None if the file order is one.

    The file order already is one when each user's events are contiguous and
    in time order (as in `UserBehavior.csv`); users then stay in file order.
    Otherwise events are stably sorted by user id, then timestamp.
    """
    same_user = user[1:] == user[:-1]
    if np.all(~same_user | (timestamp[1:] >= timestamp[:-1])):
        run_users = user[np.concatenate([[True], ~same_user])]
        if len(np.unique(run_users)) == len(run_users):
            return None
    by_time = np.argsort(timestamp, kind="stable")
    return by_time[np.argsort(user[by_time], kind="stable")]


def window_targets(user, history_length, stride):
    """Sorted positions of the window targets, and each event's user group.

    `user` is sorted. A target at user-local position `j` needs `j >= L`
    and `(n - 1 - j) % stride == 0` for a user with `n` events.
    """
    num_events = len(user)
    first = np.ones(num_events, dtype=bool)
    first[1:] = user[1:] != user[:-1]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    lengths = np.diff(np.append(starts, num_events))
    local = np.arange(num_events) - starts[group]
    from_end = lengths[group] - 1 - local
    eligible = (local >= history_length) & (from_end % stride == 0)
    return np.flatnonzero(eligible), group


def quantile_cut_time(target_time, validation_fraction):
    """`t_(k)` with `k = floor((1 - f) W)`; `k = 0` -> before every target."""
    k = int(np.floor((1.0 - float(validation_fraction)) * len(target_time)))
    if k == 0:
        return int(target_time.min()) - 1
    return int(np.partition(target_time, k - 1)[k - 1])


def rank_from_end(keys):
    """0 for the last element of each run of equal `keys`, 1 before, ..."""
    n = len(keys)
    last = np.ones(n, dtype=bool)
    last[:-1] = keys[:-1] != keys[1:]
    run_end = np.flatnonzero(last)
    run_of = np.cumsum(np.concatenate([[0], last[:-1]]))
    return run_end[run_of] - np.arange(n)


def item_pool(item, category):
    """Distinct items and the category of each one's first event."""
    items = np.unique(item)
    first = np.full(len(items), len(item), dtype=np.int64)
    np.minimum.at(first, sorted_position(items, item), np.arange(len(item)))
    return items, category[first]


def make_raw_points(
    sorted_events,
    targets,
    history_length,
    negative_ratio,
    include_behavior,
    pool,
    rng,
):
    """Raw (unmapped) points, the positive then its negatives per window."""
    user, item, category, behavior, timestamp = sorted_events
    window = targets[:, None] + np.arange(-history_length, 1)
    copies = 1 + negative_ratio
    num_windows = len(targets)

    def repeat(values):
        # [W, T] -> [W * copies, T]: each window once per point it gives.
        if copies == 1:
            return values
        shape = (len(values), copies) + values.shape[1:]
        return np.broadcast_to(values[:, None], shape).reshape(
            (-1,) + values.shape[1:]
        )

    true_next = item[targets]
    raw_item = repeat(item[window])
    raw_category = repeat(category[window])
    negative_rows = (
        np.arange(num_windows)[:, None] * copies + np.arange(1, copies)[None, :]
    ).ravel()
    if len(negative_rows):
        negative_item, negative_category = draw_negatives(
            true_next, negative_ratio, pool, rng
        )
        raw_item[negative_rows, -1] = negative_item.ravel()
        raw_category[negative_rows, -1] = negative_category.ravel()
    label = np.zeros((num_windows, copies), dtype=np.float32)
    label[:, 0] = 1.0
    if include_behavior:
        event_behavior = repeat(behavior[window]).astype(np.int32)
        event_behavior[:, -1] = 0
    else:
        event_behavior = None
    return {
        "window": repeat(window),
        "negative_rows": negative_rows,
        "raw_user": repeat(user[targets]),
        "raw_item": raw_item,
        "raw_category": raw_category,
        "timestamp": repeat(timestamp[window]),
        "behavior": event_behavior,
        "true_next_item": repeat(true_next),
        "label": label.reshape(-1, 1),
    }


def fit_vocabulary(sorted_events, targets, history_length, train):
    """Vocabulary of the ids in the training points.

    Equal to the distinct ids of every training point's positions, computed
    from the events the windows cover (plus the negative targets) instead of
    from the `[P, T]` arrays, which repeat each event up to `T` times.
    """
    user, item, category = sorted_events[:3]
    change = np.zeros(len(user) + 1, dtype=np.int64)
    np.add.at(change, targets - history_length, 1)
    np.add.at(change, targets + 1, -1)
    covered = np.cumsum(change[:-1]) > 0
    negative = train["label"][:, 0] == 0
    return TaobaoVocabulary(
        user[covered],
        np.concatenate([item[covered], train["raw_item"][negative, -1]]),
        np.concatenate(
            [category[covered], train["raw_category"][negative, -1]]
        ),
    )


def draw_negatives(true_next, negative_ratio, pool, rng):
    """Uniform pool items, `[W, negative_ratio]`, none equal to `true_next`."""
    pool_items, pool_categories = pool
    if len(pool_items) < 2:
        raise ValueError(
            "Negative sampling needs at least 2 distinct items in the pool. "
            f"Received {len(pool_items)}. Use more events or "
            "negative_ratio=0."
        )
    index = rng.integers(
        0, len(pool_items), size=(len(true_next), negative_ratio)
    )
    clash = pool_items[index] == true_next[:, None]
    while clash.any():
        index[clash] = rng.integers(0, len(pool_items), size=clash.sum())
        clash = pool_items[index] == true_next[:, None]
    return pool_items[index], pool_categories[index]


def finish_points(raw, mapped_events, vocabulary, time_feature):
    """Map ids, compute the time feature and build `TaobaoPoints`."""
    num_points, steps = raw["raw_item"].shape
    window = raw["window"]
    sparse = np.empty((num_points, steps, 3), dtype=np.int32)
    for column, mapped in enumerate(mapped_events):
        sparse[:, :, column] = np.take(mapped, window)
    # The user is the same along a window; negatives get their own target.
    rows = raw["negative_rows"]
    sparse[rows, -1, 1] = vocabulary.lookup("item", raw["raw_item"][rows, -1])
    sparse[rows, -1, 2] = vocabulary.lookup(
        "category", raw["raw_category"][rows, -1]
    )
    timestamp = raw["timestamp"]
    if time_feature == "log_elapsed_hours":
        elapsed = (timestamp[:, -1:] - timestamp).astype(np.float64)
        dense = np.log1p(elapsed / 3600.0)
    else:
        dense = np.broadcast_to(np.arange(steps) / steps, (num_points, steps))
    return TaobaoPoints(
        sparse=sparse,
        dense=dense[..., None].astype(np.float32),
        label=raw["label"],
        behavior=raw["behavior"],
        raw_user=raw["raw_user"],
        raw_item=raw["raw_item"],
        raw_category=raw["raw_category"],
        timestamp=timestamp,
        true_next_item=raw["true_next_item"],
        vocabulary_sizes=vocabulary.vocabulary_sizes,
    )
