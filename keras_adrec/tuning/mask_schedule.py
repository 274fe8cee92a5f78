"""Mask schedules: the values of the `mask_thresholds` hyperparameter.

The mask schedule is one hyperparameter, `mask_thresholds`, whose values are
strings (KerasTuner values must be scalars):

- `"geometric"`: the paper's `1e-1, 1e-2, ..., 1e-H`;
- `"geometric:B"`: the same with base `B`: `B**-1, B**-2, ..., B**-H`;
- `"fixed:T"`: one threshold `T` for every head (`"fixed"` is `"fixed:0.01"`);
- `"none"`: no mask;
- a JSON list such as `"[0.001, 0.01]"`: explicit per-head thresholds,
  which fit only trials whose `num_heads` equals the list's length;
- `"per_head"`: stands for the explicit lists when `num_heads` is searched
  too: the list whose length is the trial's `num_heads`, or the paper's
  geometric schedule for a head count without one. (KerasTuner cannot
  condition one name on another's value reliably: its conditional values of
  the same name overwrite each other.) With `num_heads` fixed, each
  explicit list is a choice of its own.
"""

import json

GEOMETRIC_BASES = (10.0, 5.0)
# Table 4's single thresholds.
FIXED_THRESHOLDS = (0.1, 0.05, 0.01, 0.005, 0.001)
DEFAULT_FIXED_THRESHOLD = 0.01


def mask_schedule_spec(value):
    """The canonical string of a mask schedule.

    Args:
        value: `None`, `"none"`, `"geometric"`, `"geometric:B"`, `"fixed"`,
            `"fixed:T"`, a list of floats, or a JSON list string.

    Returns:
        The canonical string (`"geometric"`, `"geometric:5"`, `"fixed:0.01"`,
        `"none"` or a JSON list such as `"[0.001, 0.01]"`).

    Raises:
        ValueError: for anything else.
    """
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return _list_spec(value, value)
    if not isinstance(value, str):
        raise _mask_error(value)
    text = value.strip()
    lower = text.lower()
    if lower == "none":
        return "none"
    if text.startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            raise _mask_error(value) from None
        return _list_spec(values, value)
    kind, _, argument = lower.partition(":")
    if kind == "geometric":
        base = _number(argument, value) if argument else 10.0
        if not base > 1.0:
            raise _mask_error(value)
        return "geometric" if base == 10.0 else f"geometric:{base:g}"
    if kind == "fixed":
        threshold = (
            _number(argument, value) if argument else DEFAULT_FIXED_THRESHOLD
        )
        if not 0.0 <= threshold < 1.0:
            raise _mask_error(value)
        return f"fixed:{threshold:g}"
    raise _mask_error(value)


def resolve_mask_schedule(spec, num_heads, per_head_lists=None):
    """The `mask_thresholds` argument a schedule gives for `num_heads` heads.

    Args:
        spec: a mask schedule (see `mask_schedule_spec`), or `"per_head"`.
        num_heads: int. Number of heads.
        per_head_lists: dict `num_heads -> list of thresholds`, what
            `"per_head"` resolves to; head counts without a list get the
            geometric schedule.

    Returns:
        `"geometric"` (the layer's own name for base 10), a list of
        `num_heads` floats, or `None` (no mask).

    Raises:
        ValueError: when an explicit list does not hold `num_heads` values.
    """
    if spec == "per_head":
        thresholds = (per_head_lists or {}).get(int(num_heads))
        return "geometric" if thresholds is None else list(thresholds)
    spec = mask_schedule_spec(spec)
    if spec == "none":
        return None
    if spec == "geometric":
        return "geometric"
    kind, _, argument = spec.partition(":")
    if kind == "geometric":
        base = float(argument)
        return [base ** -(head + 1) for head in range(num_heads)]
    if kind == "fixed":
        return [float(argument)] * num_heads
    values = json.loads(spec)
    if len(values) != num_heads:
        raise ValueError(
            f"`mask_thresholds` {spec} holds {len(values)} thresholds but "
            f"num_heads={num_heads}; an explicit list needs one per head."
        )
    return [float(v) for v in values]


def fits_heads(spec, num_heads):
    """Whether schedule `spec` fits `num_heads` heads (an explicit list
    needs one threshold per head)."""
    return not spec.startswith("[") or len(json.loads(spec)) == num_heads


def _list_spec(values, original):
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise _mask_error(original) from None
    if not floats or any(not 0.0 <= v < 1.0 for v in floats):
        raise _mask_error(original)
    return json.dumps(floats)


def _number(text, original):
    try:
        return float(text)
    except ValueError:
        raise _mask_error(original) from None


def _mask_error(value):
    return ValueError(
        "`mask_thresholds` must be 'geometric', 'geometric:BASE' (BASE > 1), "
        "'fixed', 'fixed:T' (0 <= T < 1), 'none'/None or a list of "
        f"thresholds in [0, 1). Received: mask_thresholds={value!r}"
    )


__all__ = [
    "mask_schedule_spec",
    "resolve_mask_schedule",
]
