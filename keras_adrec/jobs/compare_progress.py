"""`adrec compare`'s estimate of the time left, from the runs so far.

The runs differ in cost: an Ad-Rec step costs more than a dot
step, so a comparison that has timed only its first run (dot) and takes
every other run to cost the same underestimates the time left. Each
variant therefore carries a relative cost, its interaction's measured
step time in the faster of graph mode and XLA
(`keras_adrec.training.build.CPU_STEP_TIMES`, the batch size nearest the
run's), and a run not timed yet costs its relative
cost times the seconds per unit of cost of the runs timed so far. The
first run of a process also pays one-time start-up (TensorFlow's runtime,
the first tracing): once another run is timed, the first run is left out
of that rate and of its variant's mean.
"""

from keras_adrec.training.build import CPU_STEP_TIMES


def relative_costs(interactions, batch_size):
    """Relative cost of a run of each variant.

    Args:
        interactions: dict `variant -> interaction name`.
        batch_size: int, the runs' batch size.

    Returns:
        dict `variant -> cost`: the interaction's step milliseconds in the
        faster of graph mode and XLA (the mode a run picks, see
        `keras_adrec.training.build.fastest_jit_compile`) at the batch size
        of `CPU_STEP_TIMES` nearest `batch_size`; an interaction absent
        from the table gets the mean of the others.
    """
    step_ms = {}
    for (interaction, batch), (graph_ms, xla_ms, _) in CPU_STEP_TIMES.items():
        step_ms.setdefault(interaction, {})[batch] = min(graph_ms, xla_ms)
    costs = {}
    for variant, interaction in interactions.items():
        by_batch = step_ms.get(interaction)
        if by_batch:
            nearest = min(by_batch, key=lambda b: (abs(b - int(batch_size)), b))
            costs[variant] = by_batch[nearest]
    default = sum(costs.values()) / len(costs) if costs else 1.0
    return {v: costs.get(v, default) for v in interactions}


def time_left(timed, variants, seeds, costs):
    """Seconds left of a comparison.

    Args:
        timed: list of `(variant, seconds)` of the runs done, in order.
        variants: every variant of the comparison.
        seeds: int, runs per variant.
        costs: dict `variant -> relative cost` (`relative_costs`).

    Returns:
        float: the sum over the runs left of each one's estimate: its
        variant's mean time where that variant was timed, otherwise its
        relative cost times the seconds per unit of cost of the runs
        timed so far. The process's first run counts only while no other
        run is timed (see the module docstring).
    """
    if not timed:
        return 0.0
    steady = timed[1:] or timed
    rate = sum(s for _, s in steady) / sum(costs[v] for v, _ in steady)
    left = 0.0
    for variant in variants:
        done = sum(1 for v, _ in timed if v == variant)
        own = [s for v, s in steady if v == variant]
        per_run = sum(own) / len(own) if own else costs[variant] * rate
        left += per_run * (seeds - done)
    return left


def clock(seconds):
    """`seconds` as `M:SS`."""
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
