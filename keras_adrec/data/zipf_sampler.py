"""Inverse-CDF sampling of Zipf ranks (the synthetic data's categoricals)."""

import numpy as np


class ZipfSampler:
    """Inverse-CDF sampling of Zipf ranks for many columns at once.

    Column `i` draws rank `r` (0-based) with probability proportional to
    `(r + 1) ** -exponents[i]` and returns `permutations[i][r]` (the value
    holding that rank today; identity when None). Inversion uses a guide
    table (Chen and Asau, 1974): `guide[j]` is the first rank whose CDF
    exceeds `j / m`, with `m` a power of two >= the cardinality, so `u * m`
    is exact and the answer is found from `guide[floor(u * m)]` in about
    one step. The result equals `searchsorted(cdf, u, side="right")`.

    Args:
        sizes: list of int, the cardinality of each column.
        exponents: list of float, each column's Zipf exponent.
        permutations: optional list (one per column) of int arrays mapping
            rank to value, or None entries for the identity.

    Call arguments:
        uniforms: float array `[n, columns]` of uniforms in [0, 1).

    Returns:
        int32 array `[n, columns]` of values.

    Example:

    ```python
    sampler = ZipfSampler([1000, 10], [1.1, 0.5])
    values = sampler(np.random.default_rng(0).random((4, 2)))
    ```
    """

    def __init__(self, sizes, exponents, permutations=None):
        cdfs, guides, perms = [], [], []
        cdf_start = 0
        self.guide_offsets = []
        self.buckets = []
        guide_start = 0
        for i, (size, exponent) in enumerate(zip(sizes, exponents)):
            weights = np.arange(1, size + 1, dtype=np.float64) ** -exponent
            cdf = np.cumsum(weights)
            cdf /= cdf[-1]
            cdf[-1] = 1.0
            buckets = 1 << max(0, int(size - 1).bit_length())
            guide = np.searchsorted(
                cdf, np.arange(buckets) / buckets, side="right"
            )
            cdfs.append(cdf)
            guides.append(guide + cdf_start)
            perm = None if permutations is None else permutations[i]
            perms.append(np.arange(size) if perm is None else perm)
            self.guide_offsets.append(guide_start)
            self.buckets.append(buckets)
            cdf_start += size
            guide_start += buckets
        self.cdf = np.concatenate(cdfs)
        self.guide = np.concatenate(guides).astype(np.int64)
        self.values = np.concatenate(perms).astype(np.int32)
        self.guide_offsets = np.array(self.guide_offsets, dtype=np.int64)
        self.buckets = np.array(self.buckets, dtype=np.float64)

    def __call__(self, uniforms):
        """Values `[n, columns]` int32 for uniforms `[n, columns]` in [0, 1)."""
        bucket = (uniforms * self.buckets).astype(np.int64)
        index = self.guide[bucket + self.guide_offsets].reshape(-1)
        flat_uniforms = uniforms.reshape(-1)
        active = np.flatnonzero(self.cdf[index] <= flat_uniforms)
        while active.size:
            index[active] += 1
            active = active[self.cdf[index[active]] <= flat_uniforms[active]]
        return self.values[index].reshape(uniforms.shape)
