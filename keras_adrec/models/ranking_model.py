import keras
import numpy as np

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers import MLP
from keras_adrec.layers import FeatureEmbedding
from keras_adrec.layers import MultiHotEmbedding
from keras_adrec.models.interactions import build_interaction
from keras_adrec.models.presets import as_preset
from keras_adrec.models.presets import get_preset


@keras_adrec_export
class RankingModel(keras.Model):
    """A DLRM-style click-through-rate model built from injected parts.

    The composition follows `tfrs.experimental.models.Ranking` and the
    paper's skeleton (eq. 8-9):

    1. `bottom_stack` maps the dense features to a vector of width D;
    2. `embedding_layer` maps the N categorical ids to `[B, N, D]`;
    3. `interaction` takes the N+1 vectors `[bottom(x); e_1; ...; e_N]` as
       one `[B, N+1, D]` tensor and returns a flat `[B, K]`;
    4. the bottom vector is concatenated with the interaction output (eq. 8);
    5. `top_stack` maps it to one logit, and a sigmoid gives the CTR (eq. 9).

    Any of the parts can be a user's own layer. `RankingModel.from_preset`
    builds the paper's configurations (RM1-RM3) with any interaction.

    Args:
        embedding_layer: layer mapping int ids `[B, N]` to `[B, N, D]`, such
            as `keras_adrec.layers.FeatureEmbedding`.
        bottom_stack: layer mapping dense features `[B, num_dense]` to
            `[B, D]`, such as `keras_adrec.layers.MLP`.
        interaction: layer mapping `[B, N+1, D]` to `[B, K]`, or a name
            (`"dot"`, `"fm"`, `"autoint"`, `"dcnv2"`, `"adrec"`) built with
            the RM1 preset's settings.
        top_stack: layer mapping `[B, D + K]` to one logit `[B, 1]`.
        multi_hot_layer: optional layer mapping bags of ids `[B, M, L]` to
            `[B, M, D]`, such as `keras_adrec.layers.MultiHotEmbedding`; its
            M tokens join the interaction after the N embeddings (N+M+1
            tokens). Defaults to `None` (no multi-hot features).
        **kwargs: base model keyword arguments, such as `name`.

    Call arguments:
        inputs: dict with `"dense"`, float `[B, num_dense]`, and `"sparse"`,
            int `[B, N]` (the output of
            `keras_adrec.data.FeaturePreprocessor`); with a
            `multi_hot_layer`, also `"multi_hot"`, int `[B, M, L]` padded
            with -1.
        training: bool. Whether dropout is active.

    Returns:
        Click probabilities, float32 `[B, 1]`.

    Example:

    ```python
    model = keras_adrec.models.RankingModel.from_preset(
        "rm1", vocabulary_sizes=[100] * 26, num_dense=13,
        interaction="adrec")
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    ```

    References:
        Adnan et al., "Ad-Rec", NeurIPS 2023 ML for Systems, eq. 6-9.
    """

    def __init__(
        self,
        embedding_layer,
        bottom_stack,
        interaction,
        top_stack,
        multi_hot_layer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.embedding_layer = embedding_layer
        self.bottom_stack = bottom_stack
        self.interaction = build_interaction(interaction, get_preset("rm1"))
        self.top_stack = top_stack
        self.multi_hot_layer = multi_hot_layer

    @classmethod
    def from_preset(
        cls,
        preset,
        vocabulary_sizes,
        num_dense,
        interaction=None,
        multi_hot_vocabulary_sizes=None,
        combiner="mean",
        **overrides,
    ):
        """Build a model from a preset (`"rm1"`, `"rm2"`, `"rm3"`).

        Args:
            preset: a preset name (`"rm1"`), a
                `keras_adrec.models.presets.RankingPreset`, or its
                serialized dict.
            vocabulary_sizes: list of int, rows of each categorical table.
            num_dense: int, the number of dense features.
            interaction: a name or a layer; defaults to the preset's.
            multi_hot_vocabulary_sizes: optional list of int, rows of each
                multi-hot feature's table (`MultiHotEmbedding`).
            combiner: str. How a bag is pooled: `"sum"`, `"mean"` or
                `"attention"`. Defaults to `"mean"`.
            **overrides: preset fields to replace (see
                `keras_adrec.models.presets`).

        Returns:
            An unbuilt `RankingModel`.
        """
        config = as_preset(preset, **overrides)
        if int(num_dense) < 1:
            raise ValueError(
                f"`num_dense` must be positive. Received: num_dense={num_dense}"
            )
        dim = config.embedding_dim
        interaction = config.interaction if interaction is None else interaction
        return cls(
            embedding_layer=FeatureEmbedding(
                vocabulary_sizes,
                dim,
                embeddings_regularizer=(
                    keras.regularizers.L2(config.embedding_l2)
                    if config.embedding_l2 > 0
                    else None
                ),
                name="embedding",
            ),
            bottom_stack=MLP(
                list(config.bottom_units) + [dim],
                activation="relu",
                final_activation="relu",
                name="bottom_mlp",
            ),
            interaction=build_interaction(interaction, config),
            top_stack=MLP(
                list(config.top_units) + [1],
                activation="relu",
                final_activation=None,
                name="top_mlp",
            ),
            multi_hot_layer=MultiHotEmbedding(
                multi_hot_vocabulary_sizes, dim, combiner, name="multi_hot"
            )
            if multi_hot_vocabulary_sizes
            else None,
            name="_".join([config.name, _interaction_label(interaction)]),
        )

    def build(self, input_shape=None):
        if self.built:
            return
        num_dense, num_sparse = _input_widths(input_shape)
        if num_dense is None or num_sparse is None:
            num_sparse = len(getattr(self.embedding_layer, "vocabulary_sizes"))
            num_dense = num_dense or 1
        # Build every part by running one zero sample through it: each
        # injected layer then sees the exact shapes the model gives it.
        sample = {
            "dense": np.zeros((1, num_dense), "float32"),
            "sparse": np.zeros((1, num_sparse), "int32"),
        }
        if self.multi_hot_layer is not None:
            bags = len(self.multi_hot_layer.vocabulary_sizes)
            sample["multi_hot"] = np.zeros((1, bags, 2), "int32")
        self.call(sample)
        self.built = True

    def interaction_tokens(self, inputs, training=None):
        """The interaction's input `[B, N+1, D]`: bottom vector, embeddings.

        Returns:
            `(tokens, bottom)`: the token tensor and the bottom-MLP output.
        """
        dense, sparse = _unpack(inputs)
        bottom = self.bottom_stack(dense, training=training)
        embeddings = self.embedding_layer(sparse)
        if self.multi_hot_layer is not None:
            pooled = self.multi_hot_layer(_multi_hot(inputs))
            embeddings = keras.ops.concatenate(
                [embeddings, keras.ops.cast(pooled, embeddings.dtype)], axis=1
            )
        if bottom.shape[-1] != embeddings.shape[-1]:
            raise ValueError(
                f"The bottom stack outputs width {bottom.shape[-1]} but the "
                f"embeddings have width {embeddings.shape[-1]}; they must "
                "match (D)."
            )
        bottom = keras.ops.cast(bottom, embeddings.dtype)
        tokens = keras.ops.concatenate(
            [keras.ops.expand_dims(bottom, 1), embeddings], axis=1
        )
        return tokens, bottom

    def call(self, inputs, training=None):
        tokens, bottom = self.interaction_tokens(inputs, training=training)
        crossed = self.interaction(tokens, training=training)
        top_input = keras.ops.concatenate(
            [bottom, keras.ops.cast(crossed, bottom.dtype)], axis=-1
        )
        logits = self.top_stack(top_input, training=training)
        return keras.ops.sigmoid(keras.ops.cast(logits, "float32"))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                name: keras.saving.serialize_keras_object(getattr(self, name))
                for name in (
                    "embedding_layer",
                    "bottom_stack",
                    "interaction",
                    "top_stack",
                )
            }
        )
        if self.multi_hot_layer is not None:
            config["multi_hot_layer"] = keras.saving.serialize_keras_object(
                self.multi_hot_layer
            )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in (
            "embedding_layer",
            "bottom_stack",
            "interaction",
            "top_stack",
        ):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        if config.get("multi_hot_layer") is not None:
            config["multi_hot_layer"] = keras.saving.deserialize_keras_object(
                config["multi_hot_layer"]
            )
        return cls(**config)


def _interaction_label(interaction):
    if isinstance(interaction, keras.layers.Layer):
        return interaction.name
    return str(interaction).lower()


def _unpack(inputs):
    if not isinstance(inputs, dict) or not {"dense", "sparse"} <= set(inputs):
        raise ValueError(
            "RankingModel expects a dict with keys 'dense' and 'sparse'. "
            f"Received: {type(inputs).__name__}"
            + (
                f" with keys {sorted(inputs)}"
                if isinstance(inputs, dict)
                else ""
            )
        )
    return inputs["dense"], inputs["sparse"]


def _multi_hot(inputs):
    if "multi_hot" not in inputs:
        raise ValueError(
            "This RankingModel has multi-hot features: its inputs need a "
            "'multi_hot' key, int [B, M, L] padded with -1. "
            f"Received keys {sorted(inputs)}"
        )
    return inputs["multi_hot"]


def _input_widths(input_shape):
    if isinstance(input_shape, dict):
        dense = input_shape.get("dense")
        sparse = input_shape.get("sparse")
        return (
            dense[-1] if dense else None,
            sparse[-1] if sparse else None,
        )
    return None, None
