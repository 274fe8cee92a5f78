"""The input contract shared by the sequential layers.

A sequential layer takes the candidate event vector `z_tau`, `[B, W]`, and
the history `Z`, `[B, T-1, W]`, and returns a context `[B, C]`. The helpers
here check that contract once, in `build()`, and validate the integer and
rate arguments every layer shares.
"""

import numbers


def parse_sequence_shapes(candidate_shape, history_shape, layer_name):
    """Check the candidate/history shapes and read their sizes.

    Args:
        candidate_shape: shape of the candidate, `[B, W]`.
        history_shape: shape of the history, `[B, T-1, W]`.
        layer_name: str. The layer class name, for error messages.

    Returns:
        A tuple `(history_length, width)`; `history_length` may be `None`.

    Raises:
        ValueError: wrong ranks, an unknown width, or different widths.
    """
    candidate_shape = tuple(candidate_shape)
    history_shape = tuple(history_shape)
    if len(candidate_shape) != 2:
        raise ValueError(
            f"`{layer_name}` expects the candidate to have shape "
            f"`[batch_size, W]`. Received shape {candidate_shape}."
        )
    if len(history_shape) != 3:
        raise ValueError(
            f"`{layer_name}` expects the history to have shape "
            f"`[batch_size, history_length, W]`. Received shape "
            f"{history_shape}."
        )
    width = candidate_shape[-1]
    if width is None or history_shape[-1] is None:
        raise ValueError(
            f"`{layer_name}` needs the event width W to be known. Received "
            f"candidate shape {candidate_shape} and history shape "
            f"{history_shape}."
        )
    if history_shape[-1] != width:
        raise ValueError(
            f"`{layer_name}` expects the candidate and the history to have "
            f"the same width W. Received candidate shape {candidate_shape} "
            f"and history shape {history_shape}."
        )
    if history_shape[1] is not None and history_shape[1] < 1:
        raise ValueError(
            f"`{layer_name}` needs at least one history event. Received "
            f"history shape {history_shape}."
        )
    return history_shape[1], width


def check_positive_int(name, value, allow_none=False):
    """Return `value` as an int, or raise if it is not a positive int."""
    if allow_none and value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < 1
    ):
        kind = "`None` or a positive int" if allow_none else "a positive int"
        raise ValueError(f"`{name}` must be {kind}. Received: {name}={value}")
    return int(value)


def check_rate(name, value):
    """Return `value` as a float, or raise if it is not in `[0, 1)`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"`{name}` must be in [0, 1). Received: {name}={value}"
        )
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"`{name}` must be in [0, 1). Received: {name}={value}"
        )
    return float(value)


def check_choice(name, value, choices):
    """Return `value` lowercased, or raise if it is not one of `choices`."""
    key = str(value).lower()
    if key not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}. "
            f"Received: {name}={value!r}"
        )
    return key
