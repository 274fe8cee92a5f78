"""The paper's sequential configurations RM4-RM7 (Taobao, TBSM skeleton).

`SequentialPreset` adds the sequential fields to those of
`keras_adrec.models.presets.Preset`; importing this module registers the
presets `"rm4"` to `"rm7"`, so `get_preset("rm5")` and
`SequentialRankingModel.from_preset("rm5", ...)` find them.

RM4-RM7 share every field but `sequence_layer` (paper Table 1's
"Sequential Layer: Type" column, in row order): RM4 `"tsl"` (TBSM's
time-series layer), RM5 `"mha"` (multi-head attention), RM6 `"rnn"` and
RM7 `"transformer"`. The same table's "Layers/Heads" column is unreadable
in our copy of the paper, so the sequential layers' sizes below come from
TBSM's released defaults and its Taobao benchmark script
(`bench/tbsm_bench.sh`: `--tsl-num-heads=1 --tsl-inner=def
--tsl-mechanism=mlp --tsl-mlp=15-15`; `--mha-num-heads` defaults to 8),
except where noted.

Optimizer: TBSM's `torch.optim.Adagrad(lr=0.05)`, reproduced in Keras
with `initial_accumulator_value=0.0` (Keras starts at 0.1, which leaves
this model's tiny per-event gradients nearly still) and `epsilon=1e-10`
(torch adds it outside the square root), after a linear learning-rate
warm-up of 300 steps (`learning_rate_warmup_steps`; 0 gives TBSM's
optimizer exactly) that keeps the first full-size steps from saturating
the event-top MLP behind Ad-Rec's interaction.

The Ad-Rec blocks are pre-LN (`norm_first=True`, the paper's block; the
authors' released code is post-LN), with Keras's Glorot uniform
(`init_gain=1.0`, not RM1-RM3's 1/sqrt(2)) and a LayerNorm epsilon of
1e-5. Training budget: batch 128, every window of every user, one epoch.

Why each of these was chosen, with the measurements and the protocols
written before their runs: docs/sequential.md ("Why the presets are set
this way").
"""

import dataclasses

from keras_adrec.layers.attention.masked_multi_head_attention import (
    DEFAULT_MASK_RULE,
)
from keras_adrec.models.presets import Preset
from keras_adrec.models.presets import register_preset
from keras_adrec.models.sequence_layers import sequence_layer_names

SEQUENCE_LAYER_BY_PRESET = {
    "rm4": "tsl",
    "rm5": "mha",
    "rm6": "rnn",
    "rm7": "transformer",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SequentialPreset(Preset):
    """A sequential preset (RM4-RM7); the defaults are RM4's.

    The fields of `Preset` keep their meaning (the Ad-Rec and baseline
    interactions act on each event), except where said below.

    Args:
        dataset: str. Defaults to `"taobao"`.
        embedding_dim: int. D = 16, the width of the per-event embeddings
            and of the bottom MLP's output.
        bottom_units: tuple of int. Hidden sizes of the per-event bottom MLP
            before its output of width D; `()` gives TBSM's 1-16.
        top_units: tuple of int. Every width of the per-event top MLP, the
            last one being the event vector width W (TBSM's
            `--arch-mlp-top=15-15`). Unlike `RankingPreset.top_units`, it
            does not end in a logit.
        final_units: tuple of int. Hidden sizes of the final MLP on
            `[c, z_tau]` before its one logit (TBSM's `--arch-mlp=60-1`).
        history_length: int. Events before the candidate, T - 1 = 20.
        norm_first: bool. Ad-Rec's LayerNorm placement; `True` (pre-LN,
            the paper's) as in RM1-RM3 (see the module docstring).
        init_gain: float. Glorot gain of the Ad-Rec block kernels; `1.0`
            (Keras's), not RM1-RM3's 1/sqrt(2) (see the module docstring).
        sequence_layer: str. `"tsl"`, `"mha"`, `"rnn"` or `"transformer"`.
        tsl_num_heads, tsl_inner, tsl_mechanism, tsl_attention_units,
            tsl_projection: `keras_adrec.layers.TimeSeriesLayer`'s
            arguments.
        mha_num_heads: int. `keras_adrec.layers.MultiHeadAttentionContext`'s
            heads.
        rnn_cell, rnn_num_layers: `keras_adrec.layers.RecurrentContext`'s
            arguments. TBSM's default is 5 LSTM layers, but its LSTM is
            rebuilt with random weights in every forward pass and never
            trains; we default to one trained LSTM layer.
        transformer_num_layers, transformer_num_heads, transformer_ffn_dim,
            transformer_norm_first, transformer_pooling:
            `keras_adrec.layers.TransformerContext`'s arguments (TBSM has
            no transformer; 1 layer, 2 heads and FFN 128 mirror the Ad-Rec
            block).
        sequence_dropout: float in [0, 1). Dropout of the `mha` and
            `transformer` layers.
        use_behavior: bool. Embed the optional `"behavior"` input (Taobao's
            pv/cart/fav/buy as ids 1-4, 0 for the target) as a 4th
            categorical feature of every event.
        behavior_vocabulary_size: int. Rows of that embedding.
        optimizer, learning_rate, optimizer_config,
            learning_rate_warmup_steps: Adagrad at 0.05 with torch's
            accumulator start, after a 300-step linear warm-up (see the
            module docstring); build it with
            `keras_adrec.training.build.optimizer_for(config)`.
    """

    dataset: str = "taobao"
    bottom_units: tuple[int, ...] = ()
    top_units: tuple[int, ...] = (15, 15)
    final_units: tuple[int, ...] = (60,)
    history_length: int = 20
    mask_thresholds: str | tuple[float, ...] | None = (0.001, 0.01)
    mask_rule: str = DEFAULT_MASK_RULE
    # The paper's pre-LN block; post-LN (`False`) is one argument away
    # (see the module docstring for why it is not the default).
    norm_first: bool = True
    sequence_layer: str = "tsl"
    tsl_num_heads: int = 1
    tsl_inner: str = "def"
    tsl_mechanism: str = "mlp"
    tsl_attention_units: tuple[int, ...] = (15, 15)
    tsl_projection: bool = True
    mha_num_heads: int = 8
    rnn_cell: str = "lstm"
    rnn_num_layers: int = 1
    transformer_num_layers: int = 1
    transformer_num_heads: int = 2
    transformer_ffn_dim: int = 128
    transformer_norm_first: bool = False
    transformer_pooling: str = "candidate"
    sequence_dropout: float = 0.0
    use_behavior: bool = False
    behavior_vocabulary_size: int = 5
    optimizer: str = "adagrad"
    learning_rate: float = 0.05
    # torch.optim.Adagrad's accumulator start (see the module docstring).
    optimizer_config: dict | None = dataclasses.field(
        default_factory=lambda: {
            "initial_accumulator_value": 0.0,
            "epsilon": 1e-10,
        }
    )
    # Linear learning-rate warm-up (keras_adrec.training.optimizer_for),
    # chosen by the protocol in benchmarks/sequential_budget.md: without
    # it, the first full-size Adagrad steps saturate Ad-Rec's event vectors
    # on some seeds (see the module docstring).
    learning_rate_warmup_steps: int = 300

    def validate(self):
        super().validate()
        if self.sequence_layer not in sequence_layer_names():
            raise ValueError(
                "`sequence_layer` must be one of "
                f"{', '.join(sequence_layer_names())}. Received: "
                f"sequence_layer={self.sequence_layer!r}"
            )


SEQUENTIAL_PRESETS = {
    name: SequentialPreset(name=name, sequence_layer=sequence_layer)
    for name, sequence_layer in SEQUENCE_LAYER_BY_PRESET.items()
}

for _name, _preset in SEQUENTIAL_PRESETS.items():
    register_preset(_name, _preset)
