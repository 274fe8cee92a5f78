"""The TBSM-style sequential click model (RM4-RM7) of the Ad-Rec paper."""

import keras
from keras import ops

from keras_adrec.api_export import keras_adrec_export
from keras_adrec.layers import MLP
from keras_adrec.layers import FeatureEmbedding
from keras_adrec.models import sequential_presets
from keras_adrec.models.interactions import build_interaction
from keras_adrec.models.presets import as_preset
from keras_adrec.models.presets import get_preset
from keras_adrec.models.sequence_layers import build_sequence_layer

_PARTS = (
    "embedding_layer",
    "bottom_stack",
    "interaction",
    "event_top_stack",
    "sequence_layer",
    "final_stack",
)


@keras_adrec_export
class SequentialRankingModel(keras.Model):
    """A TBSM-style sequential click model built from injected parts.

    Each point is a sequence of T events `e_1..e_tau` (`tau = T`): the
    history events and, last, the candidate event whose click is
    predicted. Following TBSM and the paper's appendix A.2:

    1. Every event goes through the same non-sequential ranking model
       (eq. 10): `embedding_layer` maps its categorical ids (user, item,
       category and, with `use_behavior`, the behavior) to `[N, D]`,
       `bottom_stack` maps its dense features (the time) to `[D]`,
       `interaction` crosses the N+1 vectors `[bottom; e_1; ...; e_N]`,
       the bottom vector is concatenated with the result (eq. 8) and
       `event_top_stack` maps it to the event vector `z_t` of width W.
       All T events of the batch run through these parts in one batched
       call (`[B, T, ...]` is reshaped to `[B*T, ...]` and back), so the
       weights are shared across time and `z_t` depends on event t only.
    2. `sequence_layer` turns the candidate `z_tau` and the history
       `Z = [z_1; ...; z_{tau-1}]` (eq. 11) into a context `c` (eq. 12).
    3. `final_stack` maps `[c, z_tau]` to one logit; a sigmoid gives the
       click probability.

    `SequentialRankingModel.from_preset` builds the paper's RM4-RM7 with
    any interaction and any sequential layer.

    Args:
        embedding_layer: layer mapping int ids `[B*T, N]` to
            `[B*T, N, D]`, such as `keras_adrec.layers.FeatureEmbedding`.
        bottom_stack: layer mapping dense features `[B*T, num_dense]` to
            `[B*T, D]`.
        interaction: layer mapping `[B*T, N+1, D]` to `[B*T, K]`, or a
            name (`"dot"`, `"fm"`, `"autoint"`, `"dcnv2"`, `"adrec"`) built
            with the RM4 preset's settings.
        event_top_stack: layer mapping `[B*T, D + K]` to the event vectors
            `[B*T, W]`.
        sequence_layer: layer called as `layer(candidate [B, W],
            history [B, T-1, W])` returning `[B, C]`, or a name (`"tsl"`,
            `"mha"`, `"rnn"`, `"transformer"`) built with the RM4 preset's
            settings.
        final_stack: layer mapping `[B, C + W]` to one logit `[B, 1]`.
        use_behavior: bool. Append the `"behavior"` input as one more
            categorical id of every event (the embedding layer must then
            have one more table). Defaults to `False`; without it a
            `"behavior"` input is ignored.
        **kwargs: base model keyword arguments, such as `name`.

    Call arguments:
        inputs: dict with `"sparse"`, int `[B, T, N]` (N = 3 for Taobao:
            user, item, category ids), `"dense"`, float `[B, T, num_dense]`
            (the time feature), and, with `use_behavior`, `"behavior"`, int
            `[B, T]`. The candidate event is at position T-1 (the output of
            `keras_adrec.data.prepare_taobao`).
        training: bool. Whether dropout is active.

    Returns:
        Click probabilities, float32 `[B, 1]`.

    Example:

    ```python
    model = keras_adrec.models.SequentialRankingModel.from_preset(
        "rm4", vocabulary_sizes=[1000, 5000, 100], interaction="adrec")
    model.compile(optimizer=keras.optimizers.Adagrad(0.05),
                  loss="binary_crossentropy")
    ```

    References:
    - Adnan et al., "Ad-Rec", NeurIPS 2023 ML for Systems, appendix A.2,
      eq. 8 and 10-12.
    - [T. Ishkhanov et al., 2020. Time-based Sequence Model for
      Personalization and Recommendation Systems](
      https://arxiv.org/abs/2008.11922).
    """

    def __init__(
        self,
        embedding_layer,
        bottom_stack,
        interaction,
        event_top_stack,
        sequence_layer,
        final_stack,
        use_behavior=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        fields = None
        if not isinstance(interaction, keras.layers.Layer) or not isinstance(
            sequence_layer, keras.layers.Layer
        ):
            fields = get_preset("rm4")
        self.embedding_layer = embedding_layer
        self.bottom_stack = bottom_stack
        self.interaction = build_interaction(interaction, fields)
        self.event_top_stack = event_top_stack
        self.sequence_layer = build_sequence_layer(sequence_layer, fields)
        self.final_stack = final_stack
        self.use_behavior = bool(use_behavior)

    @classmethod
    def from_preset(
        cls,
        preset,
        vocabulary_sizes,
        interaction=None,
        sequence_layer=None,
        **overrides,
    ):
        """Build a model from a preset (`"rm4"`, `"rm5"`, `"rm6"`, `"rm7"`).

        Args:
            preset: a preset name (`"rm4"`), a
                `keras_adrec.models.sequential_presets.SequentialPreset`, or
                its serialized dict.
            vocabulary_sizes: list of int, rows of each categorical table
                of an event (Taobao: user, item, category). With
                `use_behavior=True` a behavior table of
                `behavior_vocabulary_size` rows is added.
            interaction: a name or a layer; defaults to the preset's.
            sequence_layer: a name or a layer; defaults to the preset's.
            **overrides: preset fields to replace (see
                `keras_adrec.models.sequential_presets`).

        Returns:
            An unbuilt `SequentialRankingModel`.
        """
        fields = as_preset(preset, **overrides)
        if not isinstance(fields, sequential_presets.SequentialPreset):
            raise ValueError(
                f"Preset {fields.name!r} is not a sequential "
                "preset. Use one of rm4, rm5, rm6, rm7 (or "
                "`keras_adrec.models.RankingModel` for rm1-rm3)."
            )
        dim = fields.embedding_dim
        vocabulary_sizes = [int(size) for size in vocabulary_sizes]
        if fields.use_behavior:
            vocabulary_sizes.append(fields.behavior_vocabulary_size)
        interaction = fields.interaction if interaction is None else interaction
        if sequence_layer is None:
            sequence_layer = fields.sequence_layer
        label = "_".join(
            [fields.name]
            + [_label(part) for part in (interaction, sequence_layer)]
        )
        return cls(
            embedding_layer=FeatureEmbedding(
                vocabulary_sizes, dim, name="embedding"
            ),
            bottom_stack=MLP(
                list(fields.bottom_units) + [dim],
                activation="relu",
                final_activation="relu",
                name="bottom_mlp",
            ),
            interaction=build_interaction(interaction, fields),
            # TBSM's per-event DLRM ends in a ReLU (it keeps DLRM_Net's
            # default sigmoid_top=-1: ReLU after every top layer); ours
            # ends in a sigmoid, so event vectors z_t lie in (0, 1) and no
            # unit of z_t dies. benchmarks/results/tbsm_reference.md
            # compares the two on the same points.
            event_top_stack=MLP(
                list(fields.top_units),
                activation="relu",
                final_activation="sigmoid",
                name="event_top_mlp",
            ),
            sequence_layer=build_sequence_layer(sequence_layer, fields),
            final_stack=MLP(
                list(fields.final_units) + [1],
                activation="relu",
                final_activation=None,
                name="final_mlp",
            ),
            use_behavior=fields.use_behavior,
            name=label,
        )

    def build(self, input_shape=None):
        if self.built:
            return
        if not isinstance(input_shape, dict) or not {
            "sparse",
            "dense",
        } <= set(input_shape):
            raise ValueError(
                "SequentialRankingModel expects a dict with keys 'sparse' "
                "[B, T, N] and 'dense' [B, T, num_dense] (and 'behavior' "
                f"[B, T] with `use_behavior`). Received: {input_shape}"
            )
        sparse = tuple(input_shape["sparse"])
        dense = tuple(input_shape["dense"])
        if (
            len(sparse) != 3
            or len(dense) != 3
            or None in (sparse[1], sparse[2], dense[-1])
        ):
            raise ValueError(
                "SequentialRankingModel needs 'sparse' of shape [B, T, N] "
                "and 'dense' of shape [B, T, num_dense] with T, N and "
                f"num_dense known. Received shapes {sparse} and {dense}."
            )
        _check_length(sparse)
        length, num_sparse = sparse[1], sparse[2]
        num_dense = dense[-1]
        if self.use_behavior:
            num_sparse += 1
        # Build every part from the shapes the model gives it. (Running a
        # sample through `call` here instead would trace the parts inside
        # the scratch graph `fit` builds models in, which breaks the
        # gradient of Keras's LSTM on TensorFlow.)
        embedded = _build_part(
            self.embedding_layer, (None, num_sparse), dtype="int32"
        )
        bottom = _build_part(self.bottom_stack, (None, num_dense))
        tokens = (None, embedded[1] + 1, embedded[2])
        crossed = _build_part(self.interaction, tokens)
        events = _build_part(
            self.event_top_stack, (None, bottom[-1] + crossed[-1])
        )
        width = events[-1]
        context = _build_part(
            self.sequence_layer, (None, width), (None, length - 1, width)
        )
        _build_part(self.final_stack, (None, context[-1] + width))
        self.built = True

    def event_embeddings(self, inputs, training=None):
        """The event vectors `z_1..z_tau` of every point (eq. 10).

        Args:
            inputs: the model's input dict (see the class docstring).
            training: bool. Whether dropout is active.

        Returns:
            A tensor of shape `[B, T, W]`.
        """
        dense, sparse = self._unpack(inputs)
        length = sparse.shape[1]
        if length is None:
            length = ops.shape(sparse)[1]
        bottom = self.bottom_stack(
            ops.reshape(dense, (-1, dense.shape[-1])), training=training
        )
        embeddings = self.embedding_layer(
            ops.reshape(sparse, (-1, sparse.shape[-1]))
        )
        if bottom.shape[-1] != embeddings.shape[-1]:
            raise ValueError(
                f"The bottom stack outputs width {bottom.shape[-1]} but the "
                f"embeddings have width {embeddings.shape[-1]}; they must "
                "match (D)."
            )
        bottom = ops.cast(bottom, embeddings.dtype)
        tokens = ops.concatenate([ops.expand_dims(bottom, 1), embeddings], 1)
        crossed = self.interaction(tokens, training=training)
        top_input = ops.concatenate(
            [bottom, ops.cast(crossed, bottom.dtype)], axis=-1
        )
        events = self.event_top_stack(top_input, training=training)
        return ops.reshape(events, (-1, length, events.shape[-1]))

    def call(self, inputs, training=None):
        events = self.event_embeddings(inputs, training=training)
        candidate = events[:, -1, :]
        history = events[:, :-1, :]
        context = self.sequence_layer(candidate, history, training=training)
        final_input = ops.concatenate(
            [ops.cast(context, candidate.dtype), candidate], axis=-1
        )
        logits = self.final_stack(final_input, training=training)
        return ops.sigmoid(ops.cast(logits, "float32"))

    def _unpack(self, inputs):
        required = {"dense", "sparse"} | (
            {"behavior"} if self.use_behavior else set()
        )
        if not isinstance(inputs, dict) or not required <= set(inputs):
            raise ValueError(
                "SequentialRankingModel expects a dict with keys "
                f"{sorted(required)}. Received: {type(inputs).__name__}"
                + (
                    f" with keys {sorted(inputs)}"
                    if isinstance(inputs, dict)
                    else ""
                )
            )
        dense, sparse = inputs["dense"], inputs["sparse"]
        if len(sparse.shape) != 3 or len(dense.shape) != 3:
            raise ValueError(
                "SequentialRankingModel expects 'sparse' of shape [B, T, N] "
                "and 'dense' of shape [B, T, num_dense]. Received shapes "
                f"{tuple(sparse.shape)} and {tuple(dense.shape)}."
            )
        _check_length(sparse.shape)
        if self.use_behavior:
            behavior = ops.cast(inputs["behavior"], "int32")
            sparse = ops.concatenate(
                [ops.cast(sparse, "int32"), ops.expand_dims(behavior, -1)],
                axis=-1,
            )
        return dense, sparse

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                name: keras.saving.serialize_keras_object(getattr(self, name))
                for name in _PARTS
            }
        )
        config["use_behavior"] = self.use_behavior
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in _PARTS:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


def _check_length(sparse_shape):
    if sparse_shape[1] is not None and sparse_shape[1] < 2:
        raise ValueError(
            "SequentialRankingModel needs at least one history event before "
            "the candidate (T >= 2). Received 'sparse' of shape "
            f"{tuple(sparse_shape)}."
        )


def _build_part(layer, *shapes, dtype="float32"):
    """Build `layer` for inputs of `shapes` and return its output shape."""
    if not layer.built:
        layer.build(*shapes)
    specs = [keras.KerasTensor(shape, dtype) for shape in shapes]
    return tuple(layer.compute_output_spec(*specs).shape)


def _label(part):
    if isinstance(part, keras.layers.Layer):
        return part.name
    return str(part).lower()


# Importing the presets module registers rm4-rm7 with `get_preset`.
PRESET_NAMES = tuple(sequential_presets.SEQUENTIAL_PRESETS)
