"""The hyperparameters of `AdRecSearchSpace`: their names, the values
each one takes, the check of one value, and `ranges` as JSON."""

from keras_adrec.tuning.mask_schedule import mask_schedule_spec

# Hyperparameter name -> kind. The names are constructor argument names.
HYPERPARAMETERS = (
    "num_layers",
    "num_heads",
    "ffn_dim",
    "dropout",
    "mask_thresholds",
    "mask_rule",
    "min_keys",
    "mask_warmup_steps",
    "activation",
    "norm_first",
    "learning_rate",
)
NUM_LAYERS = (1, 2, 4)
FFN_DIMS = (64, 128, 256, 512)
DROPOUT_RANGE = (0.01, 0.3)
ACTIVATIONS = ("relu", "gelu")
# Mask rules of `keras_adrec.layers.MaskedMultiHeadAttention` (issue 13's
# study, `benchmarks/mask_rules.md`), the relative rule's floor of kept
# keys, and threshold warm-ups in steps (the "mask schedules").
MASK_RULES = ("paper", "straight_through", "relative")
MIN_KEYS = (1, 2, 4)
MASK_WARMUP_STEPS = (0, 32, 256)
# The learning rate is searched (log scale) from a tenth of the preset's to
# three times it.
LEARNING_RATE_FACTORS = (0.1, 3.0)
NUMERIC = (
    "num_layers",
    "num_heads",
    "ffn_dim",
    "dropout",
    "min_keys",
    "mask_warmup_steps",
    "learning_rate",
)


def check_hyperparameter(name, value, embedding_dim):
    """One value of hyperparameter `name`, validated and normalised.

    Args:
        name: a name of `HYPERPARAMETERS`.
        value: the value to check.
        embedding_dim: int. The preset's width, which `num_heads` must
            divide.

    Returns:
        The value in its canonical form (a mask schedule's string, an int
        for an integer hyperparameter given as `2.0`).

    Raises:
        ValueError: the value is not one the hyperparameter takes.
    """
    if name == "mask_thresholds":
        return mask_schedule_spec(value)
    if name == "activation":
        if str(value) not in ACTIVATIONS:
            raise ValueError(
                "`activation` must be one of "
                f"{', '.join(ACTIVATIONS)}. Received: activation={value!r}"
            )
        return str(value)
    if name == "mask_rule":
        if str(value) not in MASK_RULES:
            raise ValueError(
                "`mask_rule` must be one of "
                f"{', '.join(MASK_RULES)}. Received: mask_rule={value!r}"
            )
        return str(value)
    if name == "mask_warmup_steps":
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError(
                "`mask_warmup_steps` must be a non-negative integer. "
                f"Received: mask_warmup_steps={value!r}"
            )
        if int(float(value)) < 0:
            raise ValueError(
                "`mask_warmup_steps` must be a non-negative integer. "
                f"Received: mask_warmup_steps={value!r}"
            )
        return int(float(value))
    if name == "norm_first":
        if not isinstance(value, bool):
            raise ValueError(
                f"`norm_first` must be a bool. Received: norm_first={value!r}"
            )
        return value
    if name in ("num_layers", "num_heads", "ffn_dim", "min_keys"):
        if (
            isinstance(value, bool)
            or float(value) != int(float(value))
            or int(float(value)) <= 0
        ):
            raise ValueError(
                f"`{name}` must be a positive integer. "
                f"Received: {name}={value!r}"
            )
        value = int(float(value))
        if name == "num_heads" and embedding_dim % value:
            raise ValueError(
                f"`num_heads` must divide embedding_dim="
                f"{embedding_dim}. Received: num_heads={value}"
            )
        return value
    value = float(value)
    if name == "dropout" and not 0.0 <= value < 1.0:
        raise ValueError(
            f"`dropout` must be in [0, 1). Received: dropout={value}"
        )
    if name == "learning_rate" and not value > 0.0:
        raise ValueError(
            f"`learning_rate` must be positive. Received: learning_rate={value}"
        )
    return value


def ranges_to_config(ranges):
    """`ranges` as JSON: `{"min", "max"}` for a pair, `{"choices"}` else."""
    config = {}
    for name, given in (ranges or {}).items():
        if isinstance(given, tuple):
            config[name] = {"min": given[0], "max": given[1]}
        else:
            config[name] = {"choices": list(given)}
    return config


def ranges_from_config(config):
    """Inverse of `ranges_to_config`."""
    return {
        name: (
            list(given["choices"])
            if "choices" in given
            else (given["min"], given["max"])
        )
        for name, given in (config or {}).items()
    }
