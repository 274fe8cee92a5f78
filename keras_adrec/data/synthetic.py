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

import json
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import tensorflow as tf

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.data.schema import CRITEO_SCHEMA
from keras_adrec.data.zipf_sampler import ZipfSampler

# Per-column counts of distinct values of Criteo Kaggle train.txt (C1..C26),
# as printed by DLRM's preprocessing (facebookresearch/dlrm, `ln_emb`).
CRITEO_KAGGLE_CARDINALITIES = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683,
    8351593, 3194, 27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15,
    286181, 105, 142572,
)  # fmt: skip

# Statistics measured on the first 10,000 rows of Criteo Kaggle train.txt
# (rounded): per-column missing rates, share of zeros and negatives among
# present values, and mean / standard deviation of log(x) over x > 0.
_DENSE_MISSING = (
    0.448, 0.0, 0.204, 0.198, 0.049, 0.251, 0.049, 0.001, 0.049, 0.448,
    0.049, 0.774, 0.198,
)  # fmt: skip
_DENSE_ZERO = (
    0.475, 0.179, 0.008, 0.071, 0.017, 0.063, 0.253, 0.118, 0.032, 0.502,
    0.265, 0.736, 0.062,
)  # fmt: skip
_DENSE_NEGATIVE = (0.0, 0.098) + (0.0,) * 11
_DENSE_LOG_MEAN = (
    1.15, 2.71, 2.04, 1.60, 7.33, 3.75, 1.80, 2.15, 3.64, 0.10, 0.68, 0.63,
    1.76,
)  # fmt: skip
_DENSE_LOG_STD = (
    1.07, 2.20, 1.46, 1.07, 2.83, 1.71, 1.39, 1.15, 1.71, 0.27, 0.84, 0.89,
    1.17,
)  # fmt: skip
_CATEGORICAL_MISSING = (
    0.0, 0.0, 0.036, 0.036, 0.0, 0.133, 0.0, 0.0, 0.0, 0.0, 0.0, 0.036, 0.0,
    0.0, 0.0, 0.036, 0.0, 0.0, 0.45, 0.45, 0.036, 0.818, 0.0, 0.036, 0.45,
    0.45,
)  # fmt: skip
# Columns that go missing together in Criteo (same rows): they share one
# uniform draw, so the column with the lower rate is missing only where the
# others are. Every other column draws its own.
_MISSING_GROUPS = (
    ("I1", "I10"),
    ("I4", "I13"),
    ("I6", "I7", "I9", "I11"),
    ("C3", "C4", "C12", "C16", "C21", "C24"),
    ("C19", "C20", "C25", "C26"),
)

# Drift per day at `shift_strength=1` (all scale linearly with it).
_POPULARITY_SHUFFLE = 0.08  # rate: share of ranks reshuffled per day
_ZIPF_DRIFT = 0.05  # std of the log Zipf exponent's AR(1) walk
_DENSE_DRIFT = 0.3  # std of the dense log-scale AR(1) walk
_DRIFT_CORRELATION = 0.7  # day-to-day correlation of those AR(1) walks
_CROSS_ROTATION = 0.35  # radians the cross-weight vectors turn per day

_DENSE_BUCKETS = 32  # teacher buckets of log1p(count): 0 = missing
_CALIBRATION_ROWS = 1 << 15
_MIN_CROSS_CARDINALITY = 10

# Keys of the independent random streams (first element of a spawn key).
_ROWS, _DRIFT, _TEACHER, _CALIBRATION, _TOKENS = range(5)
_STREAMS = (
    "categorical",
    "missing",
    "dense_kind",
    "dense_value",
    "label",
    "noise",
)

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@keras_adrec_export
class SyntheticCriteo:
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

    def write_tsv(self, directory, days=None):
        """Write one Criteo-format TSV file per day, plus metadata.

        Each line: label, 13 integers (empty where missing), 26 hex tokens
        (empty where missing), tab-separated, no header. `metadata.json`
        (`describe()`) and `README.md` beside the files say the data is
        synthetic.

        Returns:
            The list of written file paths (`synthetic_day_<d>.tsv`).
        """
        options = pa_csv.WriteOptions(
            include_header=False, delimiter="\t", quoting_style="none"
        )
        paths = []
        os.makedirs(directory, exist_ok=True)
        for day in self._days(days):
            path = os.path.join(directory, f"synthetic_day_{day}.tsv")
            with pa_csv.CSVWriter(
                path, self._arrow_schema(), write_options=options
            ) as writer:
                for index, lo, hi in self._chunk_ranges(0, self.rows_per_day):
                    chunk = self._chunk(day, index, lo, hi, tokens=False)
                    writer.write_table(self._arrow_table(chunk))
            paths.append(path)
        self._write_metadata(directory, paths, "tsv")
        return paths

    def write_parquet(self, directory, days=None, row_group_size=None):
        """Write one Parquet file per day, plus metadata.

        Files `synthetic_day_<d>.parquet`, columns `label` (int32),
        `I1..I13` (int64, null where missing) and `C1..C26` (string, null
        where missing). Each file's key-value metadata holds `describe()`
        under `keras_adrec.synthetic`.

        Args:
            directory: str. Output directory (created).
            days: int or list of ints. Defaults to `range(num_days)`.
            row_group_size: int. Rows per row group. Defaults to
                `chunk_rows`.

        Returns:
            The list of written file paths.
        """
        row_group_size = row_group_size or self.chunk_rows
        schema = self._arrow_schema().with_metadata(
            {"keras_adrec.synthetic": json.dumps(self.describe())}
        )
        paths = []
        os.makedirs(directory, exist_ok=True)
        for day in self._days(days):
            path = os.path.join(directory, f"synthetic_day_{day}.parquet")
            with pq.ParquetWriter(path, schema) as writer:
                for index, lo, hi in self._chunk_ranges(0, self.rows_per_day):
                    chunk = self._chunk(day, index, lo, hi, tokens=False)
                    table = self._arrow_table(chunk)
                    writer.write_table(
                        table.replace_schema_metadata(schema.metadata),
                        row_group_size=row_group_size,
                    )
            paths.append(path)
        self._write_metadata(directory, paths, "parquet")
        return paths

    def describe(self):
        """All parameters, derived sizes and the calibration, as a dict.

        `"synthetic"` is always `True`: anything computed from this data
        must say it was not measured on real data.
        """
        names = self._field_names
        return {
            "synthetic": True,
            "generator": "keras_adrec.data.SyntheticCriteo",
            "description": (
                "Synthetic Criteo-shaped click data (not real data): Zipf "
                "categoricals over Criteo Kaggle cardinalities, heavy-tailed "
                "dense counts with Criteo missing rates, labels from a "
                "hidden teacher with 2nd and 3rd order crosses, covariate "
                "shift across days."
            ),
            "config": self.get_config(),
            "cardinalities": list(self.cardinalities),
            "dense_missing_rates": list(_DENSE_MISSING),
            "categorical_missing_rates": list(_CATEGORICAL_MISSING),
            "missing_groups": [list(g) for g in _MISSING_GROUPS],
            "dense_log_mean": list(_DENSE_LOG_MEAN),
            "dense_log_std": list(_DENSE_LOG_STD),
            "dense_zero_rates": list(_DENSE_ZERO),
            "dense_negative_rates": list(_DENSE_NEGATIVE),
            "teacher": {
                "pairs": [[names[a], names[b]] for a, b in self._pairs],
                "triples": [
                    [names[a], names[b], names[c]] for a, b, c in self._triples
                ],
                "bias": self._bias,
                "signal_scale": self._signal_scale,
                "day0_expected_ctr": self._calibrated_ctr,
                "day0_expected_auc": self._calibrated_auc,
            },
            "drift_per_day_at_strength_1": {
                "popularity_shuffle_rate": _POPULARITY_SHUFFLE,
                "zipf_log_exponent_std": _ZIPF_DRIFT,
                "dense_log_scale_std": _DENSE_DRIFT,
                "ar1_correlation": _DRIFT_CORRELATION,
                "cross_weight_rotation_radians": _CROSS_ROTATION,
            },
        }

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

    def _build_missingness(self):
        names = self._field_names
        rates = np.array(_DENSE_MISSING + _CATEGORICAL_MISSING)
        latent = np.full(len(names), -1)
        for group_index, group in enumerate(_MISSING_GROUPS):
            for name in group:
                latent[names.index(name)] = group_index
        count = len(_MISSING_GROUPS)
        for i in np.flatnonzero(latent < 0):
            latent[i] = count
            count += 1
        self._missing_rates = rates.astype(np.float32)
        self._missing_latent = latent
        self._num_latent = count
        self._missing_ids = np.array(self.cardinalities, dtype=np.int32)
        negative = np.asarray(_DENSE_NEGATIVE, np.float32)
        self._dense_negative = negative
        self._dense_minus_two = negative / 5
        self._dense_zero_below = negative + np.asarray(_DENSE_ZERO, np.float32)

    def _build_teacher(self):
        """Random tables, active crosses and weights of the hidden teacher."""
        rng = self._rng(_TEACHER)
        num_dense = CRITEO_SCHEMA.num_dense
        # Every field's table has one extra last slot for "missing".
        sizes = [_DENSE_BUCKETS] * num_dense + [
            c + 1 for c in self.cardinalities
        ]
        self._field_sizes = np.array(sizes)
        self._field_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        total = int(np.sum(sizes))
        first = rng.standard_normal(total).astype(np.float32)
        embeddings = rng.standard_normal((total, self.teacher_dim)).astype(
            np.float32
        )
        # Dense fields: smooth functions of the bucket (random walks), so
        # that nearby counts act alike; bucket 0 (missing) stays random.
        for f in range(num_dense):
            lo = self._field_offsets[f]
            walk = slice(lo + 1, lo + _DENSE_BUCKETS)
            first[walk] = np.cumsum(first[walk]) / 4.0
            embeddings[walk] = np.cumsum(embeddings[walk], axis=0) / 4.0
        self._first_order = first
        self._embeddings = embeddings

        eligible = [
            f
            for f, size in enumerate(sizes)
            if size - 1 >= _MIN_CROSS_CARDINALITY
        ]
        self._pairs = _distinct_combinations(rng, eligible, 2, self.num_pairs)
        self._triples = _distinct_combinations(
            rng, eligible, 3, self.num_triples
        )
        self._pair_weights0 = rng.standard_normal(len(self._pairs))
        self._triple_weights0 = rng.standard_normal(len(self._triples))
        active = sorted(
            {f for cross in self._pairs + self._triples for f in cross}
        )
        self._active_fields = np.array(active, dtype=np.int64)
        position = {f: i for i, f in enumerate(active)}
        self._pair_index = np.array(
            [[position[f] for f in p] for p in self._pairs], dtype=np.int64
        ).reshape(-1, 2)
        self._triple_index = np.array(
            [[position[f] for f in t] for t in self._triples], dtype=np.int64
        ).reshape(-1, 3)

    def _calibrate(self):
        """Center the tables, standardize the terms, fit bias and scale."""
        sample_rng = {
            name: self._rng(_CALIBRATION, i) for i, name in enumerate(_STREAMS)
        }
        params = self._day_params(0)
        dense, ids = self._sample_features(
            sample_rng, params, _CALIBRATION_ROWS
        )
        flat = self._flat_ids(dense, ids)
        # Center each active field's embeddings on its day-0 mean, so that a
        # cross has no first-order part left (a true interaction).
        for f in self._active_fields:
            column = flat[:, f]
            mean = self._embeddings[column].mean(axis=0)
            lo = self._field_offsets[f]
            self._embeddings[lo : lo + self._field_sizes[f]] -= mean
        self._normalizers = None
        first, pairs, triples = self._raw_terms(flat)
        self._pair_scale = pairs.std(axis=0) + 1e-12
        self._triple_scale = triples.std(axis=0) + 1e-12
        orders = self._combine_orders(first, pairs, triples, params)
        self._normalizers = [(o.mean(), o.std() + 1e-12) for o in orders]
        signal = self._signal(first, pairs, triples, params)
        self._signal_mean = float(signal.mean())
        self._signal_std = float(signal.std() + 1e-12)
        signal = (signal - self._signal_mean) / self._signal_std
        bias, scale, ctr, auc = _calibrate_logit(
            signal.astype(np.float64), self.ctr, self.teacher_auc, self.noise
        )
        self._bias = bias
        self._signal_scale = scale
        self._calibrated_ctr = ctr
        self._calibrated_auc = auc

    # ------------------------------------------------------------------
    # Per-day drift

    def _day_params(self, day):
        if self.shift_strength == 0:
            day = 0
        if day in self._day_cache:
            return self._day_cache[day]
        earlier = [d for d in self._day_cache if d < day]
        if earlier:
            current = max(earlier)
            params = self._day_cache[current]
        else:
            current = 0
            params = self._initial_params()
            self._day_cache[0] = params
        while current < day:
            current += 1
            params = self._advance(params, current)
            if len(self._day_cache) >= 8:
                # Keep day 0 and the most recent days only.
                oldest = min(d for d in self._day_cache if d > 0)
                del self._day_cache[oldest]
            self._day_cache[current] = params
        return params

    def _initial_params(self):
        num_dense = CRITEO_SCHEMA.num_dense
        return {
            "zipf_drift": np.zeros(len(self.cardinalities)),
            "dense_drift": np.zeros(num_dense),
            "permutations": [None] * len(self.cardinalities),
            "pair_weights": self._pair_weights0.copy(),
            "triple_weights": self._triple_weights0.copy(),
            "sampler": ZipfSampler(self.cardinalities, self._exponents),
        }

    def _advance(self, params, day):
        """Parameters of `day` from those of `day - 1`."""
        rng = self._rng(_DRIFT, day)
        strength = self.shift_strength
        rho = _DRIFT_CORRELATION
        innovation = math.sqrt(1 - rho**2)
        num_categorical = len(self.cardinalities)
        zipf_drift = rho * params["zipf_drift"] + innovation * (
            rng.standard_normal(num_categorical)
        )
        dense_drift = rho * params["dense_drift"] + innovation * (
            rng.standard_normal(len(params["dense_drift"]))
        )
        shuffle = 1 - math.exp(-_POPULARITY_SHUFFLE * strength)
        permutations = []
        for n, previous in zip(self.cardinalities, params["permutations"]):
            perm = (
                np.arange(n, dtype=np.int32)
                if previous is None
                else previous.copy()
            )
            moved = np.flatnonzero(rng.random(n) < shuffle)
            perm[moved] = perm[moved[rng.permutation(len(moved))]]
            permutations.append(perm)
        sampler = ZipfSampler(
            self.cardinalities,
            self._exponents * np.exp(strength * _ZIPF_DRIFT * zipf_drift),
            permutations,
        )
        angle = _CROSS_ROTATION * strength
        pair_weights = _rotate(rng, params["pair_weights"], angle)
        triple_weights = _rotate(rng, params["triple_weights"], angle)
        return {
            "zipf_drift": zipf_drift,
            "dense_drift": dense_drift,
            "permutations": permutations,
            "pair_weights": pair_weights
            * (_norm(self._pair_weights0) / _norm(pair_weights)),
            "triple_weights": triple_weights
            * (_norm(self._triple_weights0) / _norm(triple_weights)),
            "sampler": sampler,
        }

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

    def _sample_features(self, rngs, params, n):
        """Dense float32 `[n, 13]` (NaN missing), ids int32 `[n, 26]`.

        A missing categorical gets id `cardinality` (the extra slot).
        Each quantity is drawn row-major from its own stream, so the first
        `k` rows are the same for any `n >= k`.
        """
        num_dense = CRITEO_SCHEMA.num_dense
        uniforms = rngs["categorical"].random((n, len(self.cardinalities)))
        ids = params["sampler"](uniforms)
        latent = rngs["missing"].random((n, self._num_latent), np.float32)
        missing = latent[:, self._missing_latent] < self._missing_rates
        np.copyto(ids, self._missing_ids, where=missing[:, num_dense:])

        kind = rngs["dense_kind"].random((n, num_dense), np.float32)
        normal = rngs["dense_value"].standard_normal((n, num_dense), np.float32)
        log_mean = np.asarray(_DENSE_LOG_MEAN) + (
            self.shift_strength * _DENSE_DRIFT * params["dense_drift"]
        )
        normal *= np.asarray(_DENSE_LOG_STD, np.float32)
        normal += log_mean.astype(np.float32)
        values = np.exp(normal, out=normal)
        np.ceil(values, out=values)
        np.minimum(values, np.float32(2**31 - 128), out=values)
        np.copyto(values, np.float32(0), where=kind < self._dense_zero_below)
        # Negatives: -1, and -2 for a fifth of them (as Criteo's I2).
        np.copyto(values, np.float32(-1), where=kind < self._dense_negative)
        np.copyto(values, np.float32(-2), where=kind < self._dense_minus_two)
        np.copyto(values, np.float32(np.nan), where=missing[:, :num_dense])
        return values, ids

    def _flat_ids(self, dense, ids):
        """Indices of every field's value in the flat teacher tables."""
        with np.errstate(invalid="ignore"):
            bucket = np.log1p(np.maximum(dense, 0))
        bucket *= 2
        np.minimum(bucket, _DENSE_BUCKETS - 2, out=bucket)
        bucket += 1
        np.copyto(bucket, np.float32(0), where=np.isnan(dense))
        flat = np.empty((len(ids), len(self._field_offsets)), np.int64)
        flat[:, : bucket.shape[1]] = bucket
        flat[:, bucket.shape[1] :] = ids
        flat += self._field_offsets
        return flat

    def _raw_terms(self, flat):
        """First-order sum `[n]`, pair products `[n, P]`, triples `[n, T]`."""
        first = self._first_order[flat].sum(axis=1)
        # [fields, n, dim]: each active field's embeddings, contiguous.
        vectors = self._embeddings[flat[:, self._active_fields].T]
        pairs = np.zeros((len(flat), len(self._pairs)), np.float32)
        for p, (a, b) in enumerate(self._pair_index):
            pairs[:, p] = np.einsum("nd,nd->n", vectors[a], vectors[b])
        triples = np.zeros((len(flat), len(self._triples)), np.float32)
        for t, (a, b, c) in enumerate(self._triple_index):
            triples[:, t] = np.einsum(
                "nd,nd,nd->n", vectors[a], vectors[b], vectors[c]
            )
        return first, pairs, triples

    def _combine_orders(self, first, pairs, triples, params):
        second = pairs @ (params["pair_weights"] / self._pair_scale)
        third = triples @ (params["triple_weights"] / self._triple_scale)
        return [first, second, third]

    def _signal(self, first, pairs, triples, params):
        orders = self._combine_orders(first, pairs, triples, params)
        signal = np.zeros_like(first)
        for order, (mean, std), share in zip(
            orders, self._normalizers, self.order_weights
        ):
            signal += math.sqrt(share) * (order - mean) / std
        return signal

    def _label(self, rngs, dense, ids, params):
        first, pairs, triples = self._raw_terms(self._flat_ids(dense, ids))
        signal = self._signal(first, pairs, triples, params)
        signal = (signal - self._signal_mean) / self._signal_std
        logit = self._bias + self._signal_scale * signal
        n = len(logit)
        noise = rngs["noise"].standard_normal(n, np.float32)
        probability = 1 / (1 + np.exp(-(logit + self.noise * noise)))
        label = rngs["label"].random(n, np.float32) < probability
        return logit, label.astype(np.float32)

    def _token_table(self):
        """Tokens of all columns' ids in one table, and column offsets.

        Column `i`'s value `k` is `table[offsets[i] + k]`: 8 hex characters
        of a bijective hash of `k` (distinct within a column); its missing
        slot `offsets[i] + cardinality` holds `b""`.
        """
        if self._tokens is None:
            parts = []
            for column, size in enumerate(self.cardinalities):
                salt = self._rng(_TOKENS, column).integers(
                    2**32, dtype=np.uint64
                )
                ids = (np.arange(size, dtype=np.uint64) + salt) & 0xFFFFFFFF
                parts.append(_hex8(_fmix32(ids.astype(np.uint32))))
                parts.append(np.array([b""], dtype="S8"))
            offsets = np.cumsum([0] + [s + 1 for s in self.cardinalities])
            self._tokens = (
                np.concatenate(parts),
                offsets[:-1].astype(np.int32),
            )
        return self._tokens

    # ------------------------------------------------------------------
    # Writers

    def _arrow_schema(self):
        fields = [pa.field(CRITEO_SCHEMA.label_name, pa.int32())]
        fields += [pa.field(n, pa.int64()) for n in CRITEO_SCHEMA.dense_names]
        fields += [
            pa.field(n, pa.string()) for n in CRITEO_SCHEMA.categorical_names
        ]
        return pa.schema(fields)

    def _arrow_table(self, chunk):
        dense = chunk["dense"]
        missing = np.isnan(dense)
        values = np.where(missing, 0, dense).astype(np.int64)
        columns = [pa.array(chunk["label"][:, 0].astype(np.int32))]
        columns += [
            pa.array(values[:, j], mask=missing[:, j])
            for j in range(dense.shape[1])
        ]
        for i in range(chunk["ids"].shape[1]):
            ids = chunk["ids"][:, i]
            tokens = self._arrow_tokens(i)
            columns.append(tokens.take(pa.array(ids, mask=ids < 0)))
        return pa.Table.from_arrays(columns, schema=self._arrow_schema())

    def _arrow_tokens(self, column):
        """Column `column`'s tokens as a pyarrow string array (by id)."""
        array = self._arrow_token_arrays.get(column)
        if array is None:
            tokens, offsets = self._token_table()
            size = self.cardinalities[column]
            table = tokens[offsets[column] : offsets[column] + size]
            array = pa.StringArray.from_buffers(
                size,
                pa.py_buffer(np.arange(0, 8 * size + 1, 8, dtype=np.int32)),
                pa.py_buffer(table.tobytes()),
            )
            self._arrow_token_arrays[column] = array
        return array

    def _write_metadata(self, directory, paths, file_format):
        """`metadata.json` and `README.md` saying the files are synthetic.

        Files written earlier into the same directory by a generator with
        the same config stay listed (e.g. TSV and Parquet of the same rows).
        """
        metadata = self.describe()
        files = {}
        path = os.path.join(directory, "metadata.json")
        if os.path.exists(path):
            with open(path) as f:
                previous = json.load(f)
            if previous.get("config") == metadata["config"]:
                files = dict(previous.get("files", {}))
        files.update({os.path.basename(p): file_format for p in paths})
        metadata["files"] = dict(sorted(files.items(), key=lambda kv: kv[0]))
        with open(path, "w") as f:
            json.dump(metadata, f, indent=2)
        with open(os.path.join(directory, "README.md"), "w") as f:
            f.write(
                "# SYNTHETIC data (not real Criteo data)\n\n"
                "Written by `keras_adrec.data.SyntheticCriteo`: "
                "Criteo-shaped rows whose labels come from a hidden teacher, "
                "with covariate shift across days. Any number measured on "
                "these files is a measurement on synthetic data.\n\n"
                "Files (one per day): "
                + ", ".join(f"{n} ({k})" for n, k in metadata["files"].items())
                + "\n\nParameters: `metadata.json` "
                "(`SyntheticCriteo.from_config(metadata['config'])` "
                "regenerates the same rows).\n"
            )


# ----------------------------------------------------------------------
# Helpers


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an int. Received: {name}={value!r}")
    if value < minimum:
        raise ValueError(
            f"`{name}` must be >= {minimum}. Received: {name}={value}"
        )


def _norm(vector):
    return float(np.linalg.norm(vector)) or 1.0


def _rotate(rng, weights, angle):
    """Turn `weights` by `angle` towards a fresh random direction."""
    if len(weights) == 0 or angle == 0:
        return weights.copy()
    fresh = rng.standard_normal(len(weights)) * (
        _norm(weights) / math.sqrt(len(weights))
    )
    return math.cos(angle) * weights + math.sin(angle) * fresh


def _distinct_combinations(rng, fields, order, count):
    """`count` distinct sorted tuples of `order` distinct fields."""
    if count == 0:
        return []
    if len(fields) < order:
        raise ValueError(
            f"Need at least {order} fields with >= {_MIN_CROSS_CARDINALITY} "
            f"values for order-{order} crosses; got {len(fields)}."
        )
    possible = math.comb(len(fields), order)
    if count > possible:
        raise ValueError(
            f"Asked for {count} crosses of order {order} but only "
            f"{possible} exist."
        )
    chosen = []
    while len(chosen) < count:
        cross = tuple(sorted(rng.choice(fields, order, replace=False).tolist()))
        if cross not in chosen:
            chosen.append(cross)
    return chosen


def _fmix32(x):
    """MurmurHash3's 32-bit finalizer: a bijection of uint32."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def _hex8(values):
    """uint32 array -> `S8` array of 8 lowercase hex characters."""
    shifts = np.arange(28, -1, -4, dtype=np.uint32)
    nibbles = (values[:, None] >> shifts) & np.uint32(0xF)
    return np.ascontiguousarray(_HEX[nibbles]).view("S8").reshape(-1)


def _expected_auc(probability):
    """Expected AUC of a score sorted ascending, with these click chances.

    `probability[i]` is the chance that row `i` (rows in ascending score
    order, no ties) is a click: a pair (click i, non-click j) is ranked
    right when j < i.
    """
    negatives_below = np.cumsum(1 - probability) - (1 - probability)
    positives = probability.sum()
    negatives = len(probability) - positives
    return float(
        np.sum(probability * negatives_below) / (positives * negatives)
    )


def _calibrate_logit(signal, ctr, auc, noise):
    """Bias and scale of the logit `bias + scale * signal + noise * z`.

    The mean click probability over `signal` (and over the Gaussian noise
    `z`, by Gauss-Hermite quadrature) is `ctr`, and the expected AUC of
    `signal` against the labels drawn from it is `auc`. The bias is solved
    by Newton's method for each scale; the scale by bisection (the AUC
    grows with it).

    Returns:
        `(bias, scale, reached_ctr, reached_auc)`.
    """
    signal = np.sort(signal)
    nodes, weights = np.polynomial.hermite_e.hermegauss(8)
    weights = weights / weights.sum()
    noise_values = noise * nodes[None, :]
    bias = [math.log(ctr / (1 - ctr))]

    def probability(scale):
        """Mean click probability per row and bias meeting `ctr`."""
        for _ in range(50):
            logits = bias[0] + scale * signal[:, None] + noise_values
            p = 1 / (1 + np.exp(-logits))
            mean = float((p @ weights).mean())
            if abs(mean - ctr) < 1e-9:
                break
            slope = float(((p * (1 - p)) @ weights).mean())
            bias[0] -= (mean - ctr) / slope
        logits = bias[0] + scale * signal[:, None] + noise_values
        return (1 / (1 + np.exp(-logits))) @ weights

    def reached_auc(scale):
        return _expected_auc(probability(scale))

    lo, hi = 0.0, 1.0
    while reached_auc(hi) < auc:
        lo, hi = hi, hi * 2
        if hi > 1e4:
            raise ValueError(f"Cannot reach teacher_auc={auc}.")
    while hi - lo > 1e-4 * hi:
        mid = (lo + hi) / 2
        if reached_auc(mid) < auc:
            lo = mid
        else:
            hi = mid
    scale = (lo + hi) / 2
    p = probability(scale)
    return bias[0], scale, float(p.mean()), _expected_auc(p)
