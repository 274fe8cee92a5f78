"""The features of `SyntheticCriteo` rows: missing values, counts, ids."""

import numpy as np

from keras_adrec.data.schema import CRITEO_SCHEMA
from keras_adrec.data.synthetic_profile import _CATEGORICAL_MISSING
from keras_adrec.data.synthetic_profile import _DENSE_DRIFT
from keras_adrec.data.synthetic_profile import _DENSE_LOG_MEAN
from keras_adrec.data.synthetic_profile import _DENSE_LOG_STD
from keras_adrec.data.synthetic_profile import _DENSE_MISSING
from keras_adrec.data.synthetic_profile import _DENSE_NEGATIVE
from keras_adrec.data.synthetic_profile import _DENSE_ZERO
from keras_adrec.data.synthetic_profile import _MISSING_GROUPS


class FeatureSampler:
    """`SyntheticCriteo`'s feature sampling (a mixin)."""

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
