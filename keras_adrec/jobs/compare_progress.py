"""`adrec compare`'s estimate of the time left, from the runs so far.

The runs differ in cost: an Ad-Rec step costs more than a dot
step, so a comparison that has timed only its first run (dot) and takes
every other run to cost the same underestimates the time left. Each
variant therefore carries a relative cost, its interaction's
graph-mode step time (`keras_adrec.training.build.CPU_STEP_TIMES`, the
batch size nearest the run's), and a run not timed yet costs its relative
cost times the seconds per unit of cost of the runs timed so far. The
first run of a process also pays one-time start-up (TensorFlow's runtime,
the first tracing): once another run is timed, the first run is left out
of that rate and of its variant's mean.
"""

from keras_adrec.training.build import CPU_STEP_TIMES
from keras_adrec.training.build import fastest_jit_compile


def relative_costs(interactions, batch_size, steps=None):
    """Relative cost of a run of each variant.

    Args:
        interactions: dict `variant -> interaction name`.
        batch_size: int, the runs' batch size.
        steps: int or None. Training steps of a run; None for a long run
            (as for `fastest_jit_compile`).

    Returns:
        dict `variant -> cost`: the interaction's step milliseconds at the
        batch size of `CPU_STEP_TIMES` nearest `batch_size`, in the mode
        a run of `steps` steps trains in (`fastest_jit_compile`: graph, or
        XLA where it repays its compilation; the faster of the two where
        Keras picks); an interaction absent from the table gets the mean
        of the others.
    """
    step_ms = {}
    for (interaction, batch), times in CPU_STEP_TIMES.items():
        step_ms.setdefault(interaction, {})[batch] = times
    costs = {}
    for variant, interaction in interactions.items():
        by_batch = step_ms.get(interaction)
        if by_batch:
            nearest = min(by_batch, key=lambda b: (abs(b - int(batch_size)), b))
            graph_ms, xla_ms, _ = by_batch[nearest]
            jit = fastest_jit_compile(interaction, batch_size, steps)
            if jit is True:
                costs[variant] = xla_ms
            elif jit is False:
                costs[variant] = graph_ms
            else:
                costs[variant] = min(graph_ms, xla_ms)
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
