"""Exploration of Ad-Rec variants before a protocol stage (issue 27).

Trains Ad-Rec on a shift split of `benchmarks.robustness` with one change
of the model that the presets may not offer (yet): the change is made by
patching the library's classes in this process only. Runs on exploration
seeds (the protocol uses 100 and up) choose nothing; they decide which
candidates a protocol stage spends its selection seeds on.

Variants (`--variant`):

- `default`: the presets' Ad-Rec;
- `set:K=V;K=V`: preset fields, as `--set` (JSON values);
- a `benchmarks.robustness` interaction or ablation name (`adrec-postln`,
  `adrec-noln`, `dcnv2`, ...);
- `final-norm`: a LayerNorm without weights after the last block;
- `zero-output`: the attention output and feed-forward output kernels
  start at zero (each block starts as the identity);
- `gain-scale:S`: every block kernel drawn from
  `VarianceScaling(S, "fan_avg", "uniform")` (S = gain squared);
- `embedding-dropout:R`: dropout of rate R on the embedding tokens;
- `embedding-uniform:A` / `embedding-normal:S`: embedding tables drawn
  from U(-A, A) or N(0, S) instead of `dlrm_uniform`;
- `layer-norm-epsilon:E`: the blocks' LayerNorm epsilon;
- `query-key-scale`: query and key kernels scaled by 1/sqrt(head_dim).

Usage (from the repository root):
    python -m benchmarks.robustness_explore --variant gain-scale:0.5 \
        --dataset criteo --seeds 100-111 --output runs.jsonl

Prints one JSON line per run (the `benchmarks.robustness` run record with
`variant` added) and appends it to `--output`.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", required=True)
    p.add_argument("--dataset", default="criteo")
    p.add_argument("--seeds", default="100-111", help="A-B or a,b,c")
    p.add_argument("--output", default=None)
    args = p.parse_args(argv)
    if "-" in args.seeds:
        first, last = (int(x) for x in args.seeds.split("-"))
        args.seeds = list(range(first, last + 1))
    else:
        args.seeds = [int(x) for x in args.seeds.split(",")]
    return args


def _wrap_init(cls, **forced):
    original = cls.__init__

    def init(self, *args, **kwargs):
        kwargs.update(forced)
        original(self, *args, **kwargs)

    cls.__init__ = init


def _after_build(cls, change):
    original = cls.build

    def build(self, input_shape):
        original(self, input_shape)
        change(self, input_shape)

    cls.build = build


def patch(variant):
    """Apply `variant`'s change; return the preset overrides it implies
    and a label for the run record's overrides."""
    import keras
    from keras import ops

    from keras_adrec.layers import AdRecBlock
    from keras_adrec.layers import AdRecInteraction
    from keras_adrec.layers import FeatureEmbedding
    from keras_adrec.models import RankingModel

    name, _, value = variant.partition(":")
    if name == "set":
        fields = {}
        for pair in value.split(";"):
            key, _, text = pair.partition("=")
            fields[key] = json.loads(text)
        return fields, {}
    if name == "final-norm":

        def call(self, inputs, training=None):
            z = self._tokens(inputs)
            for block in self.blocks:
                z = block(z, training=training)
            mean = ops.mean(z, -1, keepdims=True)
            z = (z - mean) / ops.sqrt(ops.var(z, -1, keepdims=True) + 1e-5)
            return ops.reshape(z, (-1, z.shape[1] * z.shape[2]))

        AdRecInteraction.call = call
    elif name == "zero-output":

        def zero(block, _):
            block.ffn_output.kernel.assign(
                ops.zeros_like(block.ffn_output.kernel)
            )
            output = block.attention_layer._output_dense.kernel
            output.assign(ops.zeros_like(output))

        _after_build(AdRecBlock, zero)
    elif name == "gain-scale":
        _wrap_init(
            AdRecBlock,
            kernel_initializer=keras.initializers.VarianceScaling(
                float(value), "fan_avg", "uniform"
            ),
        )
    elif name == "layer-norm-epsilon":
        _wrap_init(AdRecBlock, layer_norm_epsilon=float(value))
    elif name == "query-key-scale":

        def scale(block, input_shape):
            head_dim = input_shape[-1] // block.num_heads
            attention = block.attention_layer
            for dense in (attention._query_dense, attention._key_dense):
                dense.kernel.assign(dense.kernel * head_dim**-0.5)

        _after_build(AdRecBlock, scale)
    elif name in ("embedding-uniform", "embedding-normal"):
        bound = float(value)
        initializer = (
            keras.initializers.RandomUniform(-bound, bound)
            if name == "embedding-uniform"
            else keras.initializers.RandomNormal(0.0, bound)
        )
        _wrap_init(FeatureEmbedding, embeddings_initializer=initializer)
    elif name == "embedding-dropout":
        original = RankingModel.interaction_tokens
        layers = {}

        def tokens(self, inputs, training=None):
            z, bottom = original(self, inputs, training=training)
            if training:
                drop = layers.setdefault(
                    id(self), keras.layers.Dropout(float(value), seed=1)
                )
                z = ops.concatenate(
                    [z[:, :1], drop(z[:, 1:], training=True)], axis=1
                )
            return z, bottom

        RankingModel.interaction_tokens = tokens
    elif name != "default":
        return None, None
    return {}, ({"patch": variant} if name != "default" else {})


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from benchmarks import robustness

    interaction = "adrec"
    fields, label = patch(args.variant)
    if fields is None:
        if args.variant not in robustness.VARIANTS:
            print(f"unknown --variant {args.variant!r}", file=sys.stderr)
            return 2
        interaction, fields, label = args.variant, {}, {}
    # The presets' current defaults, as the robustness runs name them.
    overrides = dict({"min_frequency": 2}, **fields)
    rargs = robustness.parse_args(["--datasets", args.dataset])
    split, reason = robustness.load_split(args.dataset, rargs)
    if split is None:
        print(reason, file=sys.stderr)
        return 1
    for seed in args.seeds:
        record = robustness.train_run(
            split, args.dataset, interaction, None, seed, overrides
        )
        record["overrides"] = dict(record["overrides"], **label)
        record["variant"] = args.variant
        line = json.dumps(record)
        print(line, flush=True)
        if args.output:
            with open(args.output, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
