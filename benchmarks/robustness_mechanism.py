"""Where Ad-Rec's seed spread comes from (issue 27, item 1).

Repeatable experiments on the Criteo shift split of
`benchmarks.robustness` (RM1, rows 1-8,000 of the day-0 sample train,
later period the later-days file), one epoch per run as there:

- `repeat`: the same seed trained several times in one process. A model
  whose later-period AUC differs between repeats of one seed is not
  deterministic: its spread is not (only) the seed's.
- `determinism`: the same repeats under
  `tf.config.experimental.enable_op_determinism()` (set in a fresh
  process with `--deterministic`).
- `curves`: per seed, the training loss of the first steps and at the
  end, the initial loss, and the later-period AUC every `--eval-every`
  steps.
- `swap`: dropout off, weights of one part (embedding, bottom MLP,
  interaction, top MLP) initialised from another seed: which part's
  initialisation carries a bad seed.
- `scale`: per seed, at initialisation and after the epoch, on the
  later-period rows: the size of the embedding tokens (RMS), LayerNorm's
  amplification of them (1 / their standard deviation), and how large
  the Ad-Rec blocks' residual branches are against the tokens they add
  to (`|z_L - z_0| / |z_0|` per token): what the top MLP sees of the
  embeddings and what of the blocks' mixing.

Usage (from the repository root):
    python -m benchmarks.robustness_mechanism --experiment repeat \
        --set dropout=0.0 --seeds 0,1 --repeats 3
    python -m benchmarks.robustness_mechanism --experiment swap \
        --set dropout=0.0 --seeds 0,1,2,3,4

Prints one JSON line per run (and appends it to `--output`, if given).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

PARTS = ("embedding_layer", "bottom_stack", "interaction", "top_stack")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--experiment",
        choices=("repeat", "curves", "swap", "scale"),
        required=True,
    )
    p.add_argument("--dataset", default="criteo")
    p.add_argument("--interaction", default="adrec")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--eval-every", type=int, default=8)
    p.add_argument("--set", action="append", default=[], metavar="K=V")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="tf.config.experimental.enable_op_determinism() first",
    )
    p.add_argument(
        "--jit",
        default="fastest",
        choices=("fastest", "graph", "xla"),
        help="graph or XLA training (default: what `adrec` picks)",
    )
    p.add_argument("--output", default=None)
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    return args


def build(fields, split, seed, jit):
    import keras

    from keras_adrec.training import build_ranking_model

    keras.utils.set_random_seed(seed)
    steps = -(-len(split.train[1]) // fields.batch_size)
    jit_compile = {"fastest": "fastest", "graph": False, "xla": True}[jit]
    return build_ranking_model(
        fields,
        split.vocabulary_sizes,
        split.train[0]["dense"].shape[1],
        jit_compile=jit_compile,
        steps=steps,
    )


def train_and_measure(model, fields, split, eval_every=None):
    """Fit one epoch; the per-step losses, the later AUC curve, the AUCs."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_adrec.training import evaluate_model

    def dataset(part, batch):
        return tf.data.Dataset.from_tensor_slices(part).batch(batch)

    later = dataset(split.later, 4096)
    features, labels = split.train
    probabilities = model.predict(features, batch_size=4096, verbose=0)
    p = np.clip(probabilities.reshape(-1), 1e-7, 1 - 1e-7)
    y = labels.reshape(-1)
    initial_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    losses, curve = [], []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))
            if eval_every and (batch + 1) % eval_every == 0:
                curve.append(
                    (batch + 1, evaluate_model(self.model, later)["auc"])
                )

    model.fit(
        dataset(split.train, fields.batch_size),
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[Record()],
    )
    # Keras logs the running mean of the epoch; per-step losses from it.
    steps = np.arange(1, len(losses) + 1)
    running = np.asarray(losses)
    per_step = running * steps - np.concatenate(
        [[0.0], running[:-1] * steps[:-1]]
    )
    result = {
        "initial_loss": initial_loss,
        "initial_prediction_std": float(np.std(p)),
        "loss_steps_1_8": float(np.mean(per_step[:8])),
        "loss_steps_9_16": float(np.mean(per_step[8:16])),
        "loss_last_16": float(np.mean(per_step[-16:])),
        "max_step_loss": float(np.max(per_step)),
        "later_auc_curve": curve,
        "later_auc": evaluate_model(model, later)["auc"],
        "same_auc": evaluate_model(model, dataset(split.same, 4096))["auc"],
    }
    # The OOV rows (id 0 of every table) get no gradient when every
    # training value is in the vocabulary: they keep their random
    # initialisation. The later AUC with them set to zero, and to the mean
    # of their table's trained rows.
    table = model.embedding_layer.embeddings
    trained = table.numpy()
    offsets = model.embedding_layer.offsets
    sizes = model.embedding_layer.vocabulary_sizes
    for name, fill in (
        ("zero", lambda start, size: 0.0),
        ("mean", lambda start, size: trained[start + 1 : start + size].mean(0)),
    ):
        rows = trained.copy()
        for start, size in zip(offsets, sizes):
            rows[start] = fill(start, size)
        table.assign(rows)
        result[f"later_auc_oov_{name}"] = evaluate_model(model, later)["auc"]
        result[f"same_auc_oov_{name}"] = evaluate_model(
            model, dataset(split.same, 4096)
        )["auc"]
    table.assign(trained)
    return result


def token_scales(model, features, rows=2048):
    """Over `rows` rows of the interaction's tokens: the embedding tokens'
    RMS and mean 1 / sqrt(var + epsilon) (what LayerNorm multiplies them
    by), the median
    of the blocks' change of a token relative to the token, for the
    bottom-MLP token and the embedding tokens, and the blocks' share of
    the squared norm of what the top MLP reads."""
    import numpy as np

    sample = {k: v[:rows] for k, v in features.items()}
    tokens, _ = model.interaction_tokens(sample)
    z0 = np.asarray(tokens, "float64")
    z = tokens
    for block in model.interaction.blocks:
        z = block(z, training=False)
    change = np.linalg.norm(np.asarray(z, "float64") - z0, axis=-1)
    size = np.linalg.norm(z0, axis=-1)
    embeddings = z0[:, 1:]
    epsilon = model.interaction.blocks[0].layer_norm_epsilon
    return {
        "embedding_rms": float(np.sqrt((embeddings**2).mean())),
        # What the first LayerNorm multiplies an embedding token by.
        "layer_norm_gain": float(
            (1.0 / np.sqrt(embeddings.var(axis=-1) + epsilon)).mean()
        ),
        # Medians: a ReLU bottom MLP can output an all-zero token.
        "branch_ratio_bottom": float(
            np.median(change[:, 0] / np.maximum(size[:, 0], 1e-12))
        ),
        "branch_ratio_embeddings": float(
            np.median(change[:, 1:] / size[:, 1:])
        ),
        "branch_share_of_top_input": float(
            (change**2).sum() / (np.asarray(z, "float64") ** 2).sum()
        ),
    }


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import tensorflow as tf

    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    from benchmarks import robustness
    from keras_adrec.cli.arguments import parse_set

    overrides = parse_set(args.set)
    rargs = robustness.parse_args(
        ["--datasets", args.dataset]
        + [x for kv in args.set for x in ("--set", kv)]
    )
    split, reason = robustness.load_split(args.dataset, rargs)
    if split is None:
        print(reason, file=sys.stderr)
        return 1
    fields = robustness.run_fields(
        args.dataset, args.interaction, None, overrides
    )
    base = {
        "experiment": args.experiment,
        "dataset": args.dataset,
        "interaction": args.interaction,
        "overrides": overrides,
        "deterministic": args.deterministic,
        "jit": args.jit,
    }

    def emit(record):
        line = json.dumps(dict(base, **record))
        print(line, flush=True)
        if args.output:
            with open(args.output, "a") as f:
                f.write(line + "\n")

    if args.experiment == "scale":
        for seed in args.seeds:
            model = build(fields, split, seed, args.jit)
            before = token_scales(model, split.later[0])
            result = train_and_measure(model, fields, split)
            after = token_scales(model, split.later[0])
            emit(dict(seed=seed, initial=before, trained=after, **result))
        return 0
    if args.experiment in ("repeat", "curves"):
        repeats = args.repeats if args.experiment == "repeat" else 1
        every = args.eval_every if args.experiment == "curves" else None
        for seed in args.seeds:
            for repeat in range(repeats):
                model = build(fields, split, seed, args.jit)
                result = train_and_measure(model, fields, split, every)
                emit(dict(seed=seed, repeat=repeat, **result))
        return 0
    # swap: every part of seed a's initialisation replaced by seed b's.
    inits = {}
    for seed in args.seeds:
        model = build(fields, split, seed, args.jit)
        inits[seed] = {
            part: getattr(model, part).get_weights() for part in PARTS
        }
    for a in args.seeds:
        for part in (None,) + PARTS:
            for b in args.seeds if part else [a]:
                if part and b == a:
                    continue
                model = build(fields, split, a, args.jit)
                if part:
                    getattr(model, part).set_weights(inits[b][part])
                result = train_and_measure(model, fields, split)
                emit(dict(seed=a, part=part, part_seed=b, **result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
