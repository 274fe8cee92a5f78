"""Synthetic Criteo-shaped click data with covariate shift across days.

This is the embedded default data of keras_adrec: every command can run on it
without downloading anything. It is synthetic, and everything written from it
says so (`describe()["synthetic"]`, a `metadata.json` and a `README.md` beside
written files, Parquet key-value metadata).

Rows look like Criteo Kaggle rows: a 0/1 label, 13 integer counts (heavy
tailed, some negative, missing at Criteo's per-column rates) and 26
categorical tokens (8 lowercase hex characters, empty where missing) whose
frequencies follow a Zipf law over Criteo Kaggle's per-column cardinalities,
shrunk by `scale`.

Labels come from a hidden teacher: a logit made of first-order terms,
pairwise and three-way products of per-value embeddings (each feature value,
dense counts bucketed by `log1p`, owns a random embedding), Gaussian noise,
and a bias and scale calibrated so that day 0 has the requested click rate
and the teacher's noiseless logit reaches the requested AUC.

Covariate shift: from one day to the next the feature marginals drift (Zipf
exponents, which values are popular, the scale of dense counts) and the
weights of the active crosses rotate. `shift_strength=0` makes every day
identically distributed.

Rows are streamed in chunks of `chunk_rows`; each random quantity of a chunk
comes from its own generator keyed by `(seed, day, chunk)`, so row `r` of day
`d` is the same whatever the batch size, the rows per day or the range asked.
"""

import numpy as np
import tensorflow as tf

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.data.schema import CRITEO_SCHEMA
from keras_adrec.data.synthetic_drift import DayDrift
from keras_adrec.data.synthetic_features import FeatureSampler
from keras_adrec.data.synthetic_profile import _ROWS
from keras_adrec.data.synthetic_profile import _STREAMS
from keras_adrec.data.synthetic_profile import CRITEO_KAGGLE_CARDINALITIES
from keras_adrec.data.synthetic_teacher import ClickTeacher
from keras_adrec.data.synthetic_writer import SyntheticWriter


@keras_adrec_export
class SyntheticCriteo(FeatureSampler, DayDrift, ClickTeacher, SyntheticWriter):
    """Streams synthetic Criteo-shaped rows with covariate shift across days.

    The data is synthetic. It exists so that every part of the library can
    be trained, compared and benchmarked without downloading Criteo, on data
    whose difficulty (feature crosses up to third order, label noise) and
    drift (`shift_strength`) are known.

    Args:
        rows_per_day: int. Rows of each day. Defaults to `100_000`.
        num_days: int. Days written or streamed when `days` is not given.
            Defaults to `7` (Criteo Kaggle's seven days).
        seed: int. Seed of everything: rows, drift and teacher. Defaults to
            `0`.
        scale: float. Shrinks Criteo Kaggle's cardinalities:
            `max(min(c, min_cardinality), round(c * scale))`. `1.0` keeps
            them. Defaults to `0.004` (largest column 40,525 values).
        min_cardinality: int. Columns smaller than this keep their real
            cardinality; larger ones shrink no further than it. Defaults to
            `1000`.
        cardinalities: optional list of 26 ints. Overrides the scaled
            Criteo cardinalities.
        zipf_exponent: float or list of 26 floats. Exponent `s` of the
            rank-frequency law `p(rank) ~ rank**-s` of each categorical
            column on day 0. Defaults to `1.05`.
        shift_strength: float. Size of the day-to-day drift; `0` makes all
            days identically distributed. Defaults to `1.0`.
        ctr: float. Click rate of day 0. Defaults to `0.25`.
        teacher_auc: float. AUC of the teacher's noiseless logit against
            the sampled labels on day 0. Defaults to `0.80`.
        noise: float. Standard deviation of the Gaussian noise added to the
            teacher's logit before the label is drawn. Defaults to `0.5`.
        num_pairs: int. Active pairwise crosses of the teacher. Defaults to
            `12`.
        num_triples: int. Active three-way crosses. Defaults to `6`.
        order_weights: three floats. Shares of the teacher's signal variance
            from first-, second- and third-order terms. Defaults to
            `(0.4, 0.4, 0.2)`.
        teacher_dim: int. Width of the teacher's per-value embeddings.
            Defaults to `4`.
        chunk_rows: int. Rows generated at once; part of the row identity
            (rows depend on `seed`, day, and row index given `chunk_rows`).
            Defaults to `65536`.

    Example:

    ```python
    generator = keras_adrec.data.SyntheticCriteo(rows_per_day=10_000)
    train = generator.dataset(days=[0, 1, 2], batch_size=128)
    test = generator.dataset(days=[6], batch_size=1024)
    paths = generator.write_tsv("/tmp/synthetic")  # synthetic_day_<d>.tsv
    generator.describe()["synthetic"]  # True
    ```

    References:
        - Cardinalities: Criteo Kaggle counts printed by DLRM's
          preprocessing (github.com/facebookresearch/dlrm).
        - The shift protocol follows the setting of Ad-Rec (Adnan et al.,
          2023): train on earlier days, evaluate on later ones.
    """

    def __init__(
        self,
        rows_per_day=100_000,
        num_days=7,
        seed=0,
        scale=0.004,
        min_cardinality=1000,
        cardinalities=None,
        zipf_exponent=1.05,
        shift_strength=1.0,
        ctr=0.25,
        teacher_auc=0.80,
        noise=0.5,
        num_pairs=12,
        num_triples=6,
        order_weights=(0.4, 0.4, 0.2),
        teacher_dim=4,
        chunk_rows=65536,
    ):
        _check_int("rows_per_day", rows_per_day, 1)
        _check_int("num_days", num_days, 1)
        _check_int("seed", seed, 0)
        _check_int("min_cardinality", min_cardinality, 2)
        _check_int("num_pairs", num_pairs, 0)
        _check_int("num_triples", num_triples, 0)
        _check_int("teacher_dim", teacher_dim, 1)
        _check_int("chunk_rows", chunk_rows, 1)
        if not scale > 0:
            raise ValueError(f"`scale` must be positive. Received: {scale=}")
        if not 0 < ctr < 1:
            raise ValueError(f"`ctr` must be in (0, 1). Received: {ctr=}")
        if not 0.5 < teacher_auc < 1:
            raise ValueError(
                f"`teacher_auc` must be in (0.5, 1). Received: {teacher_auc=}"
            )
        if not noise >= 0:
            raise ValueError(f"`noise` must be >= 0. Received: {noise=}")
        if not shift_strength >= 0:
            raise ValueError(
                "`shift_strength` must be >= 0. "
                f"Received: shift_strength={shift_strength}"
            )
        order_weights = tuple(float(w) for w in order_weights)
        if len(order_weights) != 3 or min(order_weights) < 0:
            raise ValueError(
                "`order_weights` must be three non-negative floats. "
                f"Received: order_weights={order_weights}"
            )
        if sum(order_weights) <= 0:
            raise ValueError(
                "`order_weights` must not all be zero. "
                f"Received: order_weights={order_weights}"
            )
        num_categorical = CRITEO_SCHEMA.num_categorical
        if cardinalities is None:
            sizes = [
                max(min(c, min_cardinality), round(c * scale))
                for c in CRITEO_KAGGLE_CARDINALITIES
            ]
        else:
            sizes = [int(c) for c in cardinalities]
            if len(sizes) != num_categorical or min(sizes) < 1:
                raise ValueError(
                    f"`cardinalities` must be {num_categorical} positive "
                    f"ints. Received: cardinalities={cardinalities}"
                )
        exponents = np.broadcast_to(
            np.asarray(zipf_exponent, dtype=np.float64), (num_categorical,)
        ).copy()
        if np.any(exponents <= 0):
            raise ValueError(
                "`zipf_exponent` must be positive. "
                f"Received: zipf_exponent={zipf_exponent}"
            )

        self.rows_per_day = rows_per_day
        self.num_days = num_days
        self.seed = seed
        self.scale = float(scale)
        self.min_cardinality = min_cardinality
        self.cardinalities = sizes
        self.zipf_exponent = (
            float(zipf_exponent)
            if np.ndim(zipf_exponent) == 0
            else [float(e) for e in exponents]
        )
        self.shift_strength = float(shift_strength)
        self.ctr = float(ctr)
        self.teacher_auc = float(teacher_auc)
        self.noise = float(noise)
        self.num_pairs = num_pairs
        self.num_triples = num_triples
        self.order_weights = order_weights
        self.teacher_dim = teacher_dim
        self.chunk_rows = chunk_rows
        self._explicit_cardinalities = cardinalities is not None

        self._exponents = exponents
        self._day_cache = {}
        self._tokens = None
        self._arrow_token_arrays = {}
        self._build_missingness()
        self._build_teacher()
        self._calibrate()

    # ------------------------------------------------------------------
    # Public API

    @property
    def schema(self):
        """The `DatasetSchema` of the rows (`CRITEO_SCHEMA`)."""
        return CRITEO_SCHEMA

    def generate(self, day, start=0, stop=None):
        """Return rows `[start, stop)` of `day` as numpy arrays.

        Args:
            day: int. The day (0-based).
            start: int. First row. Defaults to `0`.
            stop: int. End row (exclusive). Defaults to `rows_per_day`.

        Returns:
            A dict with `"dense"` (float32 `[n, 13]`, NaN where missing),
            `"categorical"` (bytes `S8` `[n, 26]`, `b""` where missing),
            `"label"` (float32 `[n, 1]`), `"ids"` (int32 `[n, 26]` value
            index per column, `-1` where missing) and `"teacher_logit"`
            (float32 `[n]`, the noiseless logit).
        """
        stop = self.rows_per_day if stop is None else stop
        _check_int("day", day, 0)
        if not 0 <= start <= stop:
            raise ValueError(
                "Expected 0 <= start <= stop. "
                f"Received: start={start}, stop={stop}"
            )
        parts = [
            self._chunk(day, index, lo, hi)
            for index, lo, hi in self._chunk_ranges(start, stop)
        ]
        if not parts:
            return self._chunk(day, 0, 0, 0)
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def iter_chunks(self, days=None, start=0, stop=None):
        """Yield rows `[start, stop)` of each of `days` chunk by chunk.

        Dicts as `generate`; `stop` defaults to `rows_per_day`. Rows past
        `rows_per_day` are further rows of the same day's distribution:
        `start=rows_per_day` gives rows held out from that day.
        """
        stop = self.rows_per_day if stop is None else stop
        if not 0 <= start <= stop:
            raise ValueError(
                "Expected 0 <= start <= stop. "
                f"Received: start={start}, stop={stop}"
            )
        for day in self._days(days):
            for index, lo, hi in self._chunk_ranges(start, stop):
                yield self._chunk(day, index, lo, hi)

    def dataset(
        self,
        days=None,
        batch_size=128,
        drop_remainder=False,
        start=0,
        stop=None,
    ):
        """A `tf.data.Dataset` of raw Criteo batches, day after day.

        Args:
            days: int or list of ints. Days to stream, in order. Defaults to
                `range(num_days)`.
            batch_size: int. Rows per batch. Batches run across chunk and
                day boundaries. Defaults to `128`.
            drop_remainder: bool. Drop the last short batch. Defaults to
                `False`.
            start, stop: ints. Rows `[start, stop)` of each day (see
                `iter_chunks`). Default to all `rows_per_day` rows.

        Returns:
            A dataset of `({"dense": float32 [B, 13], "categorical":
            string [B, 26]}, label float32 [B, 1])`.
        """
        _check_int("batch_size", batch_size, 1)
        days = self._days(days)

        def chunks():
            for chunk in self.iter_chunks(days, start=start, stop=stop):
                yield (
                    {
                        "dense": chunk["dense"],
                        "categorical": chunk["categorical"],
                    },
                    chunk["label"],
                )

        signature = (
            {
                "dense": tf.TensorSpec(
                    [None, CRITEO_SCHEMA.num_dense], tf.float32
                ),
                "categorical": tf.TensorSpec(
                    [None, CRITEO_SCHEMA.num_categorical], tf.string
                ),
            },
            tf.TensorSpec([None, 1], tf.float32),
        )
        dataset = tf.data.Dataset.from_generator(
            chunks, output_signature=signature
        )
        dataset = dataset.rebatch(batch_size, drop_remainder=drop_remainder)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def get_config(self):
        return {
            "rows_per_day": self.rows_per_day,
            "num_days": self.num_days,
            "seed": self.seed,
            "scale": self.scale,
            "min_cardinality": self.min_cardinality,
            "cardinalities": (
                list(self.cardinalities)
                if self._explicit_cardinalities
                else None
            ),
            "zipf_exponent": self.zipf_exponent,
            "shift_strength": self.shift_strength,
            "ctr": self.ctr,
            "teacher_auc": self.teacher_auc,
            "noise": self.noise,
            "num_pairs": self.num_pairs,
            "num_triples": self.num_triples,
            "order_weights": list(self.order_weights),
            "teacher_dim": self.teacher_dim,
            "chunk_rows": self.chunk_rows,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # ------------------------------------------------------------------
    # Setup

    @property
    def _field_names(self):
        return list(CRITEO_SCHEMA.dense_names) + list(
            CRITEO_SCHEMA.categorical_names
        )

    # ------------------------------------------------------------------
    # Rows

    def _rng(self, *key):
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key))
        )

    def _days(self, days):
        if days is None:
            return list(range(self.num_days))
        if isinstance(days, (int, np.integer)):
            days = [days]
        days = [int(d) for d in days]
        for day in days:
            _check_int("day", day, 0)
        return days

    def _chunk_ranges(self, start, stop):
        first = start // self.chunk_rows
        last = (stop - 1) // self.chunk_rows if stop > start else first - 1
        for index in range(first, last + 1):
            lo = max(start, index * self.chunk_rows) - index * self.chunk_rows
            hi = (
                min(stop, (index + 1) * self.chunk_rows)
                - index * self.chunk_rows
            )
            yield index, lo, hi

    def _chunk(self, day, index, lo, hi, tokens=True):
        """Rows `lo:hi` of chunk `index` of `day` (offsets in the chunk).

        `tokens=False` leaves out `"categorical"` (the writers use `"ids"`).
        """
        rngs = {
            name: self._rng(_ROWS, day, index, i)
            for i, name in enumerate(_STREAMS)
        }
        params = self._day_params(day)
        dense, ids = self._sample_features(rngs, params, hi)
        logit, label = self._label(rngs, dense, ids, params)
        dense, ids, logit, label = dense[lo:], ids[lo:], logit[lo:], label[lo:]
        chunk = {
            "dense": dense,
            "label": label[:, None],
            "ids": np.where(ids == self._missing_ids, -1, ids),
            "teacher_logit": logit.astype(np.float32),
        }
        if tokens:
            table, offsets = self._token_table()
            chunk["categorical"] = table[ids + offsets]
        return chunk


# ----------------------------------------------------------------------
# Helpers


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an int. Received: {name}={value!r}")
    if value < minimum:
        raise ValueError(
            f"`{name}` must be >= {minimum}. Received: {name}={value}"
        )
