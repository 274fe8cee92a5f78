"""Event logs for the sequential (TBSM-style) task beyond Taobao's file.

`prepare_taobao` turns any `TaobaoEvents` (user, item, category, behavior,
time per event) into windows of history events and a candidate. This
module makes such event logs:

- `drop_cut_last_user` handles a head-of-file sample of a user-grouped log
  (the Taobao sample `UserBehavior_head84k.csv` is the first lines of
  `UserBehavior.csv`, whose events come grouped by user): the sample ends
  inside the last user's events, so that user's history is cut short at an
  arbitrary line. When every user's events form one contiguous run, the
  last run is dropped.
- `movielens_click_events` reads MovieLens ratings as click sequences: a
  rating of `CLICK_RATING` (4) or more is a click, and the clicks of each
  user in time order are that user's events.
- `prepare_movielens_sequences` gives the MovieLens windows, split by time
  as `prepare_taobao` splits Taobao (later-period validation).
"""

import dataclasses

import numpy as np

from keras_adrec.data.movielens import CLICK_RATING
from keras_adrec.data.movielens import read_movielens
from keras_adrec.data.taobao import prepare_taobao
from keras_adrec.data.taobao_events import TaobaoEvents

MOVIELENS_CATEGORY = 1
"""The one category id of every MovieLens item (`.inter` has no genre)."""

MOVIELENS_BEHAVIOR = 1
"""The behavior code of a MovieLens click (Taobao's `pv`)."""


def is_user_grouped(events):
    """Whether each user's events form one contiguous run in file order."""
    user = events.user_id
    if len(user) == 0:
        return True
    starts = user[np.concatenate([[True], user[1:] != user[:-1]])]
    return len(np.unique(starts)) == len(starts)


def drop_cut_last_user(events):
    """Drop the last user of a user-grouped log (a head-of-file sample).

    A log whose users each occupy one contiguous run of lines is read as
    the first lines of a larger user-grouped file: its last user's events
    may be cut at any line, so that user is dropped. A log that is not
    user-grouped is returned unchanged.

    Args:
        events: a `keras_adrec.data.TaobaoEvents`.

    Returns:
        `(events, dropped_user)`: the events without the last user's, and
        that user's raw id (None when nothing was dropped).
    """
    if events.num_events == 0 or not is_user_grouped(events):
        return events, None
    last = events.user_id[-1]
    keep = events.user_id != last
    return _select(events, keep), int(last)


def movielens_click_events(paths, min_rating=CLICK_RATING):
    """MovieLens ratings of `min_rating` or more as time-ordered events.

    Args:
        paths: str or list of str, MovieLens `.inter` files (see
            `keras_adrec.data.read_movielens`).
        min_rating: float. A rating at or above it is a click. Defaults to
            `4.0`.

    Returns:
        A `TaobaoEvents` of the clicks, users in order of their first
        click, each user's clicks in time order (ties in file order). Raw
        user and item ids are the MovieLens tokens numbered from 1 in
        sorted token order; every item has category `MOVIELENS_CATEGORY`
        and every click behavior `MOVIELENS_BEHAVIOR`.

    Raises:
        ValueError: no rating reaches `min_rating`.
    """
    rows = read_movielens(paths)
    clicked = rows["rating"] >= float(min_rating)
    if not clicked.any():
        raise ValueError(
            f"No MovieLens rating is {min_rating} or more, so there is no "
            "click. Lower `min_rating`."
        )
    _, user = np.unique(rows["user_id"].astype(str), return_inverse=True)
    _, item = np.unique(rows["item_id"].astype(str), return_inverse=True)
    user = user[clicked].astype(np.int64) + 1
    item = item[clicked].astype(np.int64) + 1
    timestamp = rows["timestamp"][clicked]
    # `read_movielens` orders rows by time; group them by user, keeping
    # time order (stable) and users in order of their first click.
    _, first = np.unique(user, return_index=True)
    first_rank = np.empty(user.max() + 1, dtype=np.int64)
    first_rank[user[np.sort(first)]] = np.arange(len(first))
    order = np.argsort(first_rank[user], kind="stable")
    num = len(order)
    return TaobaoEvents(
        user_id=user[order],
        item_id=item[order],
        category_id=np.full(num, MOVIELENS_CATEGORY, dtype=np.int64),
        behavior=np.full(num, MOVIELENS_BEHAVIOR, dtype=np.int8),
        timestamp=timestamp[order],
        path=", ".join([paths] if isinstance(paths, str) else list(paths)),
    )


def prepare_movielens_sequences(paths, min_rating=CLICK_RATING, **options):
    """MovieLens click sequences as TBSM-style points, split by time.

    Each user's clicks (`movielens_click_events`) are windowed as
    `keras_adrec.data.prepare_taobao` windows Taobao: `history_length`
    clicks, then the next click (label 1) and `negative_ratio` copies with
    the candidate replaced by a random item (label 0). The windows whose
    candidate is after the `1 - validation_fraction` quantile of candidate
    times validate (later-period validation); every event of a training
    point is at or before that cut.

    Args:
        paths: str or list of str, MovieLens `.inter` files.
        min_rating: float. The click threshold. Defaults to `4.0`.
        **options: arguments of `prepare_taobao` (`history_length`,
            `negative_ratio`, `validation_fraction`, `seed`, ...).

    Returns:
        A `keras_adrec.data.TaobaoSplit`.
    """
    return prepare_taobao(
        movielens_click_events(paths, min_rating=min_rating), **options
    )


def _select(events, keep):
    return dataclasses.replace(
        events,
        user_id=events.user_id[keep],
        item_id=events.item_id[keep],
        category_id=events.category_id[keep],
        behavior=events.behavior[keep],
        timestamp=events.timestamp[keep],
    )
