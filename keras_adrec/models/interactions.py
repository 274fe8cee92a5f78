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


def _no_args(config):
    return {}


def _listed(thresholds):
    """A preset's tuple of thresholds as the list the layer stores."""
    return list(thresholds) if isinstance(thresholds, tuple) else thresholds


def _adrec_args(config):
    return {
        "num_layers": config.num_layers,
        "num_heads": config.num_heads,
        "ffn_dim": config.ffn_dim,
        "mask_thresholds": _listed(config.mask_thresholds),
        "dropout": config.dropout,
        "norm_first": config.norm_first,
        "use_layer_norm": config.use_layer_norm,
        "positional_embedding": config.positional_embedding,
        "activation": config.activation,
        "mask_rule": config.mask_rule,
        "min_keys": config.min_keys,
        "mask_warmup_steps": config.mask_warmup_steps,
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "kernel_initializer": _block_initializer(config.init_gain),
    }


def _block_initializer(gain):
    """Glorot uniform scaled by `gain` (Keras' own at gain 1)."""
    if gain == 1.0:
        return "glorot_uniform"
    return keras.initializers.VarianceScaling(
        scale=gain**2, mode="fan_avg", distribution="uniform"
    )


def _autoint_args(config):
    return {
        "num_layers": config.num_layers,
        "num_heads": config.num_heads,
    }


def _cross_args(config):
    return {
        "num_layers": config.cross_layers,
        "projection_dim": config.cross_projection_dim,
    }


# name -> (layer class, function taking preset fields to its arguments)
INTERACTIONS = {
    "dot": (DotInteraction, _no_args),
    "fm": (FactorizationMachine, _no_args),
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
        fields: a `keras_adrec.models.presets.Preset`; required when
            `interaction` names a layer with arguments (all but `dot` and
            `fm`).
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
    if fields is None and arguments is not _no_args:
        raise ValueError(
            f"Building the interaction {interaction!r} by name needs the "
            "preset (for example `get_preset('rm1')`)."
        )
    return layer_class(**arguments(fields), name=name)
