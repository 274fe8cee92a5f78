"""Day-to-day covariate shift of `SyntheticCriteo`.

Zipf exponents, which values are popular and the scale of dense counts
drift as AR(1) walks; the weights of the active crosses rotate.
"""

import math

import numpy as np

from keras_adrec.data.schema import CRITEO_SCHEMA
from keras_adrec.data.synthetic_profile import _CROSS_ROTATION
from keras_adrec.data.synthetic_profile import _DRIFT
from keras_adrec.data.synthetic_profile import _DRIFT_CORRELATION
from keras_adrec.data.synthetic_profile import _POPULARITY_SHUFFLE
from keras_adrec.data.synthetic_profile import _ZIPF_DRIFT
from keras_adrec.data.zipf_sampler import ZipfSampler


class DayDrift:
    """`SyntheticCriteo`'s per-day parameters (a mixin)."""

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
