"""Choosing a `tf.distribute` strategy for `adrec train --strategy`.

Strategies (`make_strategy(name)`):

- `"default"`: one device, `tf.distribute.get_strategy()`.
- `"mirrored"`: `tf.distribute.MirroredStrategy` over every local GPU (or,
  without GPUs, every logical CPU device). Training runs through
  `model.fit`.
- `"multiworker"`: `tf.distribute.MultiWorkerMirroredStrategy` over the
  hosts that the `TF_CONFIG` environment variable describes, one process
  per host, each started with the same command. Keras 3 `model.fit` fails
  under this strategy (keras-team/keras#20585), so training runs through
  `keras_adrec.training.custom_loop.train_custom_loop`. Worker 0 is the
  chief: it alone writes the output directory; every worker reads the same
  data and evaluates the whole validation set itself.

Batch size. The batch size (`--batch-size` or the preset's `batch_size`) is
GLOBAL: one training step consumes that many rows in total, and each of the
`num_replicas_in_sync` replicas gets `batch_size / num_replicas` of them
(the last batch of a pass may be smaller, and split unevenly). The loss of a
step is the mean over the global batch, so a step under any strategy is the
same update as a single-device step on the same rows, up to floating-point
summation order.

Learning rate. The learning rate (preset or `--set learning_rate=...`) is
used as given: with the global batch unchanged, adding replicas changes
nothing about the optimisation. With `--scale-lr` it is scaled linearly
with the global batch, `lr * batch_size / preset_batch_size` (the "linear
scaling rule", Goyal et al. 2017, arXiv:1706.02677), for a larger global
batch such as `preset_batch_size * num_replicas` that keeps each replica's
share constant. `scaled_learning_rate` computes it.

Embedding tables larger than one device. `FeatureEmbedding` keeps every
table as row ranges of one variable; `mirrored` and `multiworker` replicate
that variable on every replica, so all tables together must fit on one
device (with the optimizer's slots: x1 for SGD, x2 for Adagrad, x3 for
Adam).

1. The supported path is hashing: the preset field `max_index_range`
   (DLRM's `--max-ind-range`; `--set max_index_range=R`) maps each
   categorical column to at most `R` ids, so the tables hold at most
   `num_categorical * R * embedding_dim` floats whatever the data's
   cardinality. RM2 sets `R = 10_000_000`; Criteo with `R = 1_000_000` and
   D = 64 is 26 * 1e6 * 64 * 4 bytes = 6.7 GB. Choose `R` so that the
   tables and their optimizer slots fit on one device.
2. Row sharding over parameter servers runs, outside `adrec train`:
   created in a `tf.distribute.ParameterServerStrategy` scope with a
   `variable_partitioner` (`tf.distribute.experimental.partitioners.
   MinSizePartitioner`), the table of a Keras 3 `FeatureEmbedding` becomes
   a Keras variable backed by a `ShardedVariable` whose row blocks live on
   different parameter servers, and a `RankingModel` trains through a
   `tf.distribute.coordinator.ClusterCoordinator`
   (`tests/training/test_distribution.py` runs it with two in-process
   parameter servers). Three Keras 3 limits keep it out of
   `adrec train`: `model.fit` has no parameter-server support in Keras 3;
   `tape.gradient` with respect to a Keras variable backed by a
   `ShardedVariable` fails (`AttributeError: 'ShardedVariable' object has
   no attribute 'handle'`), so the table's gradient must be taken with
   respect to its shard variables and applied outside the Keras optimizer
   (the test does plain SGD on the shards); and `FeatureEmbedding` looks
   up with `keras.ops.take`, which first concatenates the shards into one
   dense tensor on the worker, so each step still moves the whole table.
   A scalable lookup is `tf.nn.embedding_lookup(sharded_variable, ids)`,
   which fetches only the rows needed from each shard (the test checks it
   equals `FeatureEmbedding`'s output).
3. `keras-rs`'s `DistributedEmbedding` shards tables on TPU SparseCore
   only; on CPU and GPU its only placement is `"default_device"`, plain
   `EmbedReduce` (`keras.layers.Embedding`) tables that `tf.distribute`
   replicates, so it does not lift the one-device limit there.
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def local_devices():
    """Devices `"mirrored"` replicates over: local GPUs, else logical CPUs."""
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return [device.name for device in gpus]
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def make_strategy(name="default"):
    """Create the `tf.distribute.Strategy` named `name`.

    Args:
        name: str. One of `"default"`, `"mirrored"`, `"multiworker"`, or
            None for `"default"`.

    Returns:
        A `tf.distribute.Strategy`.

    Example:

    ```python
    strategy = make_strategy("mirrored")
    with strategy.scope():
        model = build_model()
    ```
    """
    name = "default" if name is None else str(name).lower()
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy {name!r}. Choose one of {', '.join(STRATEGIES)}."
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=local_devices())
    check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_tf_config():
    """`ValueError` unless `TF_CONFIG` describes a multiworker cluster."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "The multiworker strategy needs the TF_CONFIG environment "
            'variable, e.g. TF_CONFIG=\'{"cluster": {"worker": '
            '["host1:12345", "host2:12345"]}, "task": {"type": '
            '"worker", "index": 0}}\' on the first host.'
        )
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        config["task"]["index"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            "TF_CONFIG must be JSON with cluster.worker (a list of "
            "host:port) and task.index. Received: " + raw
        ) from None
    if not workers:
        raise ValueError("TF_CONFIG names no worker. Received: " + raw)


def strategy_name(strategy):
    """The `make_strategy` name of `strategy`, else its class name."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if strategy is tf.distribute.get_strategy() and not (
        tf.distribute.has_strategy()
    ):
        return "default"
    return type(strategy).__name__


def uses_custom_loop(strategy):
    """Whether `model.fit` cannot run under `strategy` (multi-worker)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes outputs: always, except worker > 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not uses_custom_loop(strategy):
        return True
    task_type = resolver.task_type
    task_id = resolver.task_id
    return task_type in (None, "chief") or (
        task_type == "worker" and task_id == 0
    )


def task_label(strategy):
    """`"worker-1"` style name of this process (`"chief"` on one host)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return "chief"
    return f"{resolver.task_type}-{resolver.task_id}"


def scaled_learning_rate(learning_rate, batch_size, reference_batch_size):
    """Linear scaling rule: `learning_rate * batch_size / reference`.

    Args:
        learning_rate: float. The rate tuned for `reference_batch_size`.
        batch_size: int. The global batch size actually used.
        reference_batch_size: int. The global batch the rate was tuned for
            (the preset's `batch_size`).

    Returns:
        float, the learning rate for `batch_size`.
    """
    if int(batch_size) < 1 or int(reference_batch_size) < 1:
        raise ValueError(
            "Batch sizes must be positive. Received: "
            f"batch_size={batch_size}, "
            f"reference_batch_size={reference_batch_size}"
        )
    return float(learning_rate) * int(batch_size) / int(reference_batch_size)
