"""Summaries over seeds: the one mean and spread every table reports.

Every table of keras_adrec reports "mean ± sample std (ddof=1) over N
seeds"; `STD_LABEL` is that phrase, so headers say which statistic they
show.
"""

import math

STD_LABEL = "mean ± sample std (ddof=1)"


def mean_std(values):
    """Mean and sample standard deviation (ddof=1) of the non-None values.

    Args:
        values: iterable of numbers or None (None entries are skipped, as
            for a seed that did not reach a target).

    Returns:
        `(mean, std)`: floats; `std` is None for a single value; both None
        for no values.

    Example:

    ```python
    mean_std([0.70, 0.72, 0.71])  # (0.71, 0.01)
    ```
    """
    values = [float(v) for v in values if v is not None]
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    variance = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance)


def paired_difference(values, baseline):
    """Mean and standard error of the per-seed differences `values - baseline`.

    Args:
        values, baseline: equal-length sequences, paired by position (seed).

    Returns:
        `(mean, standard_error)`; `standard_error` is the sample std of the
        differences over sqrt(n), None for n < 2.
    """
    values, baseline = list(values), list(baseline)
    if len(values) != len(baseline):
        raise ValueError(
            "Paired values need equal lengths. Received: "
            f"{len(values)} and {len(baseline)}"
        )
    mean, std = mean_std([a - b for a, b in zip(values, baseline)])
    if std is None:
        return mean, None
    return mean, std / math.sqrt(len(values))
