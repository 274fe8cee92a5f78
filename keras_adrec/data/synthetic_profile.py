"""Criteo Kaggle's statistics and the constants of `SyntheticCriteo`.

The per-column cardinalities, missing rates and dense-count shapes the
synthetic rows imitate, the strengths of the day-to-day drift, and the keys
of the independent random streams.
"""

import numpy as np

# Per-column counts of distinct values of Criteo Kaggle train.txt (C1..C26),
# as printed by DLRM's preprocessing (facebookresearch/dlrm, `ln_emb`).
CRITEO_KAGGLE_CARDINALITIES = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683,
    8351593, 3194, 27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15,
    286181, 105, 142572,
)  # fmt: skip

# Column statistics of the first 10,000 rows of Criteo Kaggle train.txt
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
