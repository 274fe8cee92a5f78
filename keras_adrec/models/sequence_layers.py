"""Sequential-layer names and the layer each one builds: one table.

`build_sequence_layer("tsl", preset)` maps a name to a layer class of
`keras_adrec.layers.sequence` and takes that class's arguments from the
preset's fields (see `keras_adrec.models.sequential_presets`). A layer
instance passes through unchanged, so a user can inject any layer called
as `layer(candidate [B, W], history [B, T-1, W]) -> [B, C]`.
"""

import keras

from keras_adrec.layers.sequence import MultiHeadAttentionContext
from keras_adrec.layers.sequence import RecurrentContext
from keras_adrec.layers.sequence import TimeSeriesLayer
from keras_adrec.layers.sequence import TransformerContext


def _tsl_args(config):
    return {
        "num_heads": config.tsl_num_heads,
        "inner": config.tsl_inner,
        "mechanism": config.tsl_mechanism,
        "attention_units": list(config.tsl_attention_units),
        "projection": config.tsl_projection,
    }


def _mha_args(config):
    return {
        "num_heads": config.mha_num_heads,
        "dropout": config.sequence_dropout,
    }


def _rnn_args(config):
    return {
        "cell": config.rnn_cell,
        "num_layers": config.rnn_num_layers,
    }


def _transformer_args(config):
    return {
        "num_layers": config.transformer_num_layers,
        "num_heads": config.transformer_num_heads,
        "ffn_dim": config.transformer_ffn_dim,
        "norm_first": config.transformer_norm_first,
        "pooling": config.transformer_pooling,
        "dropout": config.sequence_dropout,
    }


# name -> (layer class, function taking preset fields to its arguments)
SEQUENCE_LAYERS = {
    "tsl": (TimeSeriesLayer, _tsl_args),
    "mha": (MultiHeadAttentionContext, _mha_args),
    "rnn": (RecurrentContext, _rnn_args),
    "transformer": (TransformerContext, _transformer_args),
}


def sequence_layer_names():
    """The sequential-layer names that `build_sequence_layer` accepts."""
    return list(SEQUENCE_LAYERS)


def build_sequence_layer(sequence_layer, fields=None, name="sequence_layer"):
    """Return the sequential layer for a name or pass a layer through.

    Args:
        sequence_layer: a name from `sequence_layer_names()` or a
            `keras.layers.Layer` instance.
        fields: a `keras_adrec.models.sequential_presets.SequentialPreset`;
            required when
            `sequence_layer` is a name.
        name: layer name for a layer built from a name.

    Returns:
        A `keras.layers.Layer`.
    """
    if isinstance(sequence_layer, keras.layers.Layer):
        return sequence_layer
    key = str(sequence_layer).lower()
    if key not in SEQUENCE_LAYERS:
        raise ValueError(
            f"Unknown sequence layer {sequence_layer!r}. Choose one of "
            f"{', '.join(SEQUENCE_LAYERS)} or pass a keras Layer."
        )
    if fields is None:
        raise ValueError(
            f"Building the sequence layer {sequence_layer!r} by name needs "
            "the preset fields (for example `get_preset('rm4')`)."
        )
    layer_class, arguments = SEQUENCE_LAYERS[key]
    return layer_class(**arguments(fields), name=name)
