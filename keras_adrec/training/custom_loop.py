"""A training loop for strategies `model.fit` cannot run under.

Keras 3 `model.fit` fails under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585, tensorflow/tensorflow#72388). `train_custom_loop`
trains a compiled model with the same Keras optimizer, the same loss and the
same Keras callbacks (`on_train_begin`, `on_train_batch_begin/end` with the
running mean `loss` in the logs, `on_train_end`, `model.stop_training`), so
`ConvergenceLogger`, `NanGuard`, `TrainingCheckpoint` and
`keras.callbacks.TerminateOnNaN` work as they do under `fit`.

Each step: the global batch is split over the replicas
(`strategy.experimental_distribute_dataset`, data sharding), every replica
computes the sum of its per-example losses divided by the global number of
examples in the step (all-reduced, so a smaller last batch is averaged
correctly), the Keras optimizer sums the replicas' gradients and applies
them. Under a `mixed_float16` policy `model.compile` has wrapped the
optimizer in a `LossScaleOptimizer`; the loss is scaled with
`optimizer.scale_loss` and the optimizer unscales the gradients.
"""

import keras
import tensorflow as tf


def train_custom_loop(model, dataset, strategy, callbacks=(), verbose=False):
    """Train `model` for one pass over `dataset` under `strategy`.

    Args:
        model: a compiled Keras model whose variables and optimizer were
            created inside `strategy.scope()`; it outputs probabilities and
            is trained with binary cross-entropy.
        dataset: `tf.data.Dataset` of `(features, label)` GLOBAL batches.
            Repeat it beforehand for several epochs.
        strategy: the `tf.distribute.Strategy`.
        callbacks: list of `keras.callbacks.Callback`.
        verbose: bool. Show a Keras progress bar.

    Returns:
        int, the number of steps run.
    """
    optimizer = model.optimizer
    if optimizer is None:
        raise ValueError("Compile the model before `train_custom_loop`.")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    distributed = strategy.experimental_distribute_dataset(
        dataset.with_options(options)
    )
    variables = model.trainable_variables

    def replica_step(features, labels):
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            probabilities = model(features, training=True)
            per_example = keras.losses.binary_crossentropy(
                tf.cast(labels, probabilities.dtype), probabilities
            )
            per_example = tf.cast(tf.reshape(per_example, [-1]), "float32")
            count = context.all_reduce(
                tf.distribute.ReduceOp.SUM,
                tf.cast(tf.size(per_example), "float32"),
            )
            loss = tf.reduce_sum(per_example) / tf.maximum(count, 1.0)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(
                    tf.add_n([tf.cast(x, "float32") for x in model.losses])
                )
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss

    # One trace for every batch, the smaller last one included.
    @tf.function(input_signature=[distributed.element_spec])
    def train_step(batch):
        per_replica = strategy.run(replica_step, args=batch)
        return strategy.reduce(
            tf.distribute.ReduceOp.SUM, per_replica, axis=None
        )

    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=False,
        add_progbar=bool(verbose),
        model=model,
        verbose=1 if verbose else 0,
        epochs=1,
        steps=None,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    callback_list.on_epoch_begin(0)
    total = 0.0
    steps = 0
    logs = {}
    for batch in distributed:
        callback_list.on_train_batch_begin(steps)
        total += float(train_step(batch))
        steps += 1
        logs = {"loss": total / steps}
        callback_list.on_train_batch_end(steps - 1, logs)
        if model.stop_training:
            break
    callback_list.on_epoch_end(0, logs)
    callback_list.on_train_end(logs)
    return steps
