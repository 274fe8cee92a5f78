"""Per-head mask diagnostics of a ranking model's Ad-Rec interaction.

`mask_diagnostics(model, features, labels)` reports, for every block and
head of the model's `AdRecInteraction`, how many keys each query row keeps,
how many rows keep a single key (hard attention) and, given labels, the
gradient norm of the head's query and key kernels under the binary
cross-entropy of the batch. A head whose kept keys stay near 1 and whose
query/key gradients are near 0 does not learn where to attend.
"""

import keras
import numpy as np


def _adrec_interaction(model):
    from keras_adrec.layers import AdRecInteraction

    interaction = getattr(model, "interaction", None)
    if not isinstance(interaction, AdRecInteraction):
        raise ValueError(
            "`mask_diagnostics` needs a model whose `interaction` is an "
            "`AdRecInteraction`. Received: interaction="
            f"{type(interaction).__name__}"
        )
    return interaction


def _loss(labels, predictions):
    """Mean binary cross-entropy of the batch."""
    labels = keras.ops.reshape(keras.ops.cast(labels, "float32"), (-1, 1))
    predictions = keras.ops.reshape(predictions, (-1, 1))
    return keras.ops.mean(keras.losses.binary_crossentropy(labels, predictions))


def _gradients(model, features, labels, variables):
    """Gradients of the mean binary cross-entropy for `variables`.

    By the running backend's own autodiff: `tf.GradientTape` on
    TensorFlow, `jax.grad` of `model.stateless_call` on JAX.

    Returns:
        A dict from each variable's `path` to its gradient.

    Raises:
        NotImplementedError: on any other backend.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = _loss(labels, model(features, training=False))
        grads = tape.gradient(loss, variables)
        return dict(zip([v.path for v in variables], grads))
    if backend == "jax":
        import jax

        trainable = model.trainable_variables
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_of(values):
            predictions, _ = model.stateless_call(
                values, non_trainable, features, training=False
            )
            return _loss(labels, predictions)

        grads = jax.grad(loss_of)([v.value for v in trainable])
        by_path = {v.path: g for v, g in zip(trainable, grads)}
        return {v.path: by_path.get(v.path) for v in variables}
    raise NotImplementedError(
        "`mask_diagnostics` computes gradient norms on the TensorFlow and "
        f"JAX backends only; the running backend is {backend!r}. Call it "
        "without `labels` for the keep statistics."
    )


def mask_diagnostics(model, features, labels=None):
    """Per-block, per-head keep statistics and query/key gradient norms.

    Args:
        model: a built `keras_adrec.models.RankingModel` (anything with
            `interaction_tokens(features)` and an `AdRecInteraction` as
            `interaction`).
        features: a batch of model inputs, `{"dense": ..., "sparse": ...}`.
        labels: optional array of 0/1 labels, shape `(B,)` or `(B, 1)`.
            With labels, the gradient of the batch's mean binary
            cross-entropy, in inference mode, is reported per head
            (TensorFlow and JAX backends; others raise
            `NotImplementedError`).

    Returns:
        A list with one dict per block, each with numpy arrays of shape
        `(num_heads,)`: `"mean_kept_keys"`, `"single_key_fraction"`,
        `"thresholds"` (in use at the current step) and, with labels,
        `"query_kernel_grad_norm"` and `"key_kernel_grad_norm"`; plus
        `"num_keys"` (tokens per sample) and `"mask_rule"`.

    Example:

    >>> report = mask_diagnostics(model, features, labels)
    >>> report[0]["mean_kept_keys"]  # one entry per head of block 0
    """
    interaction = _adrec_interaction(model)
    tokens, _ = model.interaction_tokens(features, training=False)
    report = interaction.mask_diagnostics(tokens)
    gradients = None
    if labels is not None:
        variables = []
        for block in interaction.blocks:
            attention = block.attention_layer
            variables += [attention.query_dense.kernel]
            variables += [attention.key_dense.kernel]
        gradients = _gradients(model, features, labels, variables)
    for block, entry in zip(interaction.blocks, report):
        entry["num_keys"] = int(tokens.shape[1])
        entry["mask_rule"] = (
            "none" if block.mask_thresholds is None else block.mask_rule
        )
        if gradients is not None:
            norms = block.attention_layer.head_gradient_norms(gradients)
            entry["query_kernel_grad_norm"] = norms["query_kernel"]
            entry["key_kernel_grad_norm"] = norms["key_kernel"]
    return report


def format_mask_diagnostics(report, title=None):
    """Markdown table lines of a `mask_diagnostics` report."""
    lines = [f"{title}", ""] if title else []
    has_grads = "query_kernel_grad_norm" in report[0]
    header = "| block | head | threshold | mean kept keys | single-key rows |"
    rule = "|---:|---:|---:|---:|---:|"
    if has_grads:
        header += " query kernel grad norm | key kernel grad norm |"
        rule += "---:|---:|"
    lines += [header, rule]
    for index, entry in enumerate(report):
        for head in range(len(entry["mean_kept_keys"])):
            row = (
                f"| {index} | {head} | {entry['thresholds'][head]:.4g} | "
                f"{entry['mean_kept_keys'][head]:.2f} of "
                f"{entry['num_keys']} | "
                f"{100 * entry['single_key_fraction'][head]:.1f}% |"
            )
            if has_grads:
                row += (
                    f" {entry['query_kernel_grad_norm'][head]:.3g} |"
                    f" {entry['key_kernel_grad_norm'][head]:.3g} |"
                )
            lines.append(row)
    return lines


def as_json(report):
    """The report with numpy arrays turned into lists."""
    return [
        {
            k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
            for k, v in entry.items()
        }
        for entry in report
    ]
