"""Interaction names and the layer each one builds: one table, no if-chain.

`build_interaction("adrec", preset)` maps a name to a layer class and takes
that class's arguments from the preset's fields (see
`keras_adrec.models.presets`). A layer instance passes through unchanged, so
a user can inject any interaction of their own.
"""

import keras

from keras_adrec.layers import AdRecInteraction
from keras_adrec.layers import AutoIntInteraction
from keras_adrec.layers import CrossNetwork
from keras_adrec.layers import DotInteraction
from keras_adrec.layers import FactorizationMachine
from keras_adrec.layers.attention.masked_multi_head_attention import (
    DEFAULT_MASK_RULE,
)
from keras_adrec.layers.attention.masked_multi_head_attention import (
    DEFAULT_MIN_KEYS,
)


def _adrec_args(fields):
    return {
        "num_layers": fields["num_layers"],
        "num_heads": fields["num_heads"],
        "ffn_dim": fields["ffn_dim"],
        "mask_thresholds": fields["mask_thresholds"],
        "dropout": fields["dropout"],
        "norm_first": fields["norm_first"],
        "use_layer_norm": fields["use_layer_norm"],
        "positional_embedding": fields["positional_embedding"],
        "activation": fields["activation"],
        "mask_rule": fields.get("mask_rule", DEFAULT_MASK_RULE),
        "min_keys": fields.get("min_keys", DEFAULT_MIN_KEYS),
        "mask_warmup_steps": fields.get("mask_warmup_steps", 0),
    }


def _autoint_args(fields):
    return {
        "num_layers": fields["num_layers"],
        "num_heads": fields["num_heads"],
    }


def _cross_args(fields):
    return {
        "num_layers": fields["cross_layers"],
        "projection_dim": fields["cross_projection_dim"],
    }


# name -> (layer class, function taking preset fields to its arguments)
INTERACTIONS = {
    "dot": (DotInteraction, lambda fields: {}),
    "fm": (FactorizationMachine, lambda fields: {}),
    "autoint": (AutoIntInteraction, _autoint_args),
    "dcnv2": (CrossNetwork, _cross_args),
    "adrec": (AdRecInteraction, _adrec_args),
}


def interaction_names():
    """The interaction names that `build_interaction` accepts."""
    return list(INTERACTIONS)


def build_interaction(interaction, fields=None, name="interaction"):
    """Return the interaction layer for a name or pass a layer through.

    Args:
        interaction: a name from `interaction_names()` or a
            `keras.layers.Layer` instance.
        fields: dict of preset fields (see `keras_adrec.models.presets`);
            required when `interaction` is a name.
        name: layer name for a layer built from a name.

    Returns:
        A `keras.layers.Layer`.
    """
    if isinstance(interaction, keras.layers.Layer):
        return interaction
    key = str(interaction).lower()
    if key not in INTERACTIONS:
        raise ValueError(
            f"Unknown interaction {interaction!r}. Choose one of "
            f"{', '.join(INTERACTIONS)} or pass a keras Layer."
        )
    layer_class, arguments = INTERACTIONS[key]
    return layer_class(**arguments(fields or {}), name=name)
