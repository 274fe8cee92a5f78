"""Writing `SyntheticCriteo` rows to files, and the description beside them.

TSV files as Criteo ships them and Parquet files, each folder with a
`metadata.json` and a `README.md` that say the data is synthetic.
"""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from keras_adrec.data.schema import CRITEO_SCHEMA
from keras_adrec.data.synthetic_profile import _CATEGORICAL_MISSING
from keras_adrec.data.synthetic_profile import _CROSS_ROTATION
from keras_adrec.data.synthetic_profile import _DENSE_DRIFT
from keras_adrec.data.synthetic_profile import _DENSE_LOG_MEAN
from keras_adrec.data.synthetic_profile import _DENSE_LOG_STD
from keras_adrec.data.synthetic_profile import _DENSE_MISSING
from keras_adrec.data.synthetic_profile import _DENSE_NEGATIVE
from keras_adrec.data.synthetic_profile import _DENSE_ZERO
from keras_adrec.data.synthetic_profile import _DRIFT_CORRELATION
from keras_adrec.data.synthetic_profile import _HEX
from keras_adrec.data.synthetic_profile import _MISSING_GROUPS
from keras_adrec.data.synthetic_profile import _POPULARITY_SHUFFLE
from keras_adrec.data.synthetic_profile import _TOKENS
from keras_adrec.data.synthetic_profile import _ZIPF_DRIFT


class SyntheticWriter:
    """`SyntheticCriteo`'s writers and `describe()` (a mixin)."""

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
        must say it comes from synthetic data.
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
