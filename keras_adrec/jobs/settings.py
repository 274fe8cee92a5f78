"""Checks that every job's settings dataclass shares.

Each job (`train_ranking`, `train_sequential`, `compare`) receives one
frozen settings dataclass, defined beside it, whose `validate` method
(run on creation) uses these helpers, so a bad value fails at once with a
message naming the field: ``ValueError("`seed` must be 0 or more.
Received: seed=-1")``.
"""


def check_choice(name, value, choices):
    """`value` must be one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(str, choices))}. "
            f"Received: {name}={value!r}"
        )


def check_int(name, value, minimum, optional=False):
    """`value` must be an int (not a bool) >= `minimum` (or None when
    `optional`)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int. Received: {name}={value!r}")
    if value < minimum:
        what = "positive" if minimum == 1 else f"{minimum} or more"
        raise ValueError(f"`{name}` must be {what}. Received: {name}={value!r}")


def check_fraction(name, value, closed_right=False, optional=False):
    """`value` must be a number in (0, 1) (in (0, 1] when
    `closed_right`), or None when `optional`."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"`{name}` must be a number. Received: {name}={value!r}"
        )
    inside = 0.0 < value <= 1.0 if closed_right else 0.0 < value < 1.0
    if not inside:
        interval = "(0, 1]" if closed_right else "(0, 1)"
        raise ValueError(
            f"`{name}` must lie in {interval}. Received: {name}={value!r}"
        )


def check_type(name, value, expected, what):
    """`value` must be an instance of `expected` (described as `what`)."""
    if not isinstance(value, expected):
        raise TypeError(f"`{name}` must be {what}. Received: {name}={value!r}")
