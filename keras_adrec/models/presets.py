"""The paper's model configurations (its Table 1) as presets.

A preset is a flat dict of fields. `get_preset("rm1", num_heads=4)` returns a
copy with overrides applied; an unknown field raises `ValueError`, so a typo
in `adrec train --set` never passes silently.

Fields:
- `dataset`: the data kind the preset was designed for.
- `embedding_dim`: D, the width of every embedding table and of the bottom
  MLP's output.
- `bottom_units`, `top_units`: hidden sizes of the bottom and top MLPs (the
  input size is implied; the top MLP ends in one logit).
- `interaction`: the default interaction name.
- `num_layers`, `num_heads`, `ffn_dim`, `dropout`, `mask_thresholds`,
  `mask_rule`, `min_keys`, `mask_warmup_steps`, `norm_first`,
  `use_layer_norm`, `positional_embedding`, `activation`: the Ad-Rec
  interaction's arguments (`num_heads` and `num_layers` also set
  AutoInt's).
- `cross_layers`, `cross_projection_dim`: DCN-v2's depth and rank (the
  authors' released code uses 2 layers of rank 128 for RM1).
- `optimizer`, `learning_rate`, `batch_size`, `epochs`: training settings.
- `max_index_range`: hash categoricals into this many ids (DLRM's
  `--max-ind-range`); `None` fits per-column vocabularies instead.
- `min_frequency`: the vocabulary's minimum count; rarer ids share the
  out-of-vocabulary bucket.

The RM1 learning rate is 0.1 as in the authors' released scripts (the paper's
text says 0.01; Table 1 and the code say 0.1).
"""

import copy

_COMMON = {
    "interaction": "adrec",
    "num_layers": 1,
    "num_heads": 2,
    "ffn_dim": 128,
    "dropout": 0.01,
    "mask_thresholds": "geometric",
    # The relative rule (keep p >= theta_h * max p, at least `min_keys`
    # keys), no warm-up: the winner of the second pre-registered selection
    # (benchmarks/mask_rules.md, protocol v2: every head learning and the
    # best baseline reached on both samples, highest mean AUC). The paper's
    # rule is one argument away: `mask_rule="paper"`.
    "mask_rule": "relative",
    "min_keys": 2,
    "mask_warmup_steps": 0,
    "norm_first": True,
    "use_layer_norm": True,
    "positional_embedding": False,
    "activation": "relu",
    "cross_layers": 2,
    "cross_projection_dim": 128,
    "optimizer": "sgd",
    "epochs": 1,
    "max_index_range": None,
    "min_frequency": 1,
}

PRESETS = {
    "rm1": {
        **_COMMON,
        "dataset": "criteo",
        "embedding_dim": 16,
        "bottom_units": [512, 256, 64],
        "top_units": [512, 256],
        "learning_rate": 0.1,
        "batch_size": 128,
    },
    "rm2": {
        **_COMMON,
        "dataset": "criteo",
        "embedding_dim": 64,
        "bottom_units": [512, 256],
        "top_units": [512, 512, 256],
        "num_heads": 8,
        "ffn_dim": 512,
        "mask_thresholds": [10.0**-k for k in range(1, 9)],
        "learning_rate": 0.1,
        "batch_size": 1024,
        "max_index_range": 10_000_000,
    },
    "rm3": {
        **_COMMON,
        "dataset": "avazu",
        "embedding_dim": 16,
        "bottom_units": [512, 256, 64],
        "top_units": [512, 256],
        "mask_thresholds": [0.001, 0.01],
        "learning_rate": 0.2,
        "batch_size": 128,
    },
}


def preset_names():
    """Names of the available presets."""
    return sorted(PRESETS)


def get_preset(name, **overrides):
    """Return a copy of preset `name` with `overrides` applied.

    Args:
        name: str. A preset name such as `"rm1"` (case-insensitive).
        **overrides: fields to replace; each must already exist in the preset.

    Returns:
        A new dict of the preset's fields.
    """
    key = str(name).lower()
    if key not in PRESETS:
        raise ValueError(
            f"Unknown preset {name!r}. Available presets: "
            f"{', '.join(preset_names())}."
        )
    config = copy.deepcopy(PRESETS[key])
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(
            f"Unknown preset field(s) {', '.join(unknown)} for {key}. "
            f"Known fields: {', '.join(sorted(config))}."
        )
    config.update(copy.deepcopy(overrides))
    config["name"] = key
    return config


def register_preset(name, fields):
    """Add a preset (used by the sequential presets RM4-RM7)."""
    PRESETS[str(name).lower()] = dict(fields)
