"""Outputs and gradients of the interaction layers on one Keras backend.

Run as `python -m tests.backends.cross_backend_worker OUT.npz` with
`KERAS_BACKEND` set; `test_cross_backend.py` runs it once per backend and
compares the files. Every case builds its layer, sets every trainable
weight from a seeded numpy generator (in `layer.trainable_weights` order,
which is the same on every backend), then computes, through
`layer.stateless_call` and the backend's own autodiff
(`tf.GradientTape` on TensorFlow, `jax.grad` on JAX):

- the output on fixed float32 inputs (`training=False`, so no dropout),
- the gradient of `sum(output * probe)` with respect to each input and
  each trainable weight (`probe` is a fixed random tensor, so layer norm
  outputs do not give zero gradients).

The file holds `CASE/output`, `CASE/d_input/I`, `CASE/d_weight/PATH`,
`CASE/weight/PATH` (the weights as set) and `CASE/margin` for cases whose
first-pass attention probabilities decide a keep mask: the smallest
relative distance of a probability to its head's threshold, so a
comparison failure can be told apart from a mask decision that flipped.
"""

import inspect
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adrec import layers  # noqa: E402
from keras_adrec.layers.attention import (  # noqa: E402
    masked_multi_head_attention as mha_module,
)
from tests.backends.autodiff import output_and_gradients  # noqa: E402

BATCH, TOKENS, DIM = 3, 5, 8


def mask_rules():
    """The `mask_rule` values of the attention layer, or `[None]`."""
    rules = getattr(mha_module, "MASK_RULES", None)
    if rules is None:
        return [None]
    return list(rules)


def _rule_kwargs(layer_class, rule):
    if rule is None:
        return {}
    if "mask_rule" not in inspect.signature(layer_class).parameters:
        return {}
    return {"mask_rule": rule}


def _tokens(seed, shape=(BATCH, TOKENS, DIM)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _padding_mask():
    # Sample 0 sees every key, sample 1 the first 3, sample 2 the first 4.
    lengths = np.array([TOKENS, 3, 4])
    keys = np.arange(TOKENS)[None, None, :] < lengths[:, None, None]
    return np.broadcast_to(keys, (BATCH, TOKENS, TOKENS)).copy()


def cases():
    """`(name, layer, inputs, call_kwargs, thresholds)` of every case.

    `inputs` are the differentiable float32 arrays passed positionally;
    `call_kwargs` are constants (masks); `training=False` is added for
    layers whose `call` takes it.
    `thresholds` is the list of head thresholds whose keep mask the
    first-pass probabilities decide, or `None`.
    """
    x = _tokens(1)
    result = []
    for rule in mask_rules():
        suffix = "" if rule is None else f"_{rule}"
        kwargs = _rule_kwargs(layers.MaskedMultiHeadAttention, rule)
        layer = layers.MaskedMultiHeadAttention(
            num_heads=2, key_dim=4, mask_thresholds=[0.15, 0.05], **kwargs
        )
        result.append((f"masked_mha{suffix}", layer, [x, _tokens(2)], {}, True))
        layer = layers.MaskedMultiHeadAttention(
            num_heads=2, key_dim=4, mask_thresholds=[0.15, 0.05], **kwargs
        )
        result.append(
            (
                f"masked_mha_padding{suffix}",
                layer,
                [x, _tokens(2)],
                {"attention_mask": _padding_mask()},
                True,
            )
        )
    default_rule = getattr(mha_module, "DEFAULT_MASK_RULE", None)
    block_kwargs = _rule_kwargs(layers.AdRecBlock, default_rule)
    result.append(
        (
            "adrec_block",
            layers.AdRecBlock(
                num_heads=2, ffn_dim=12, dropout=0.0, **block_kwargs
            ),
            [x],
            {},
            False,
        )
    )
    interaction_kwargs = _rule_kwargs(layers.AdRecInteraction, default_rule)
    result.append(
        (
            "adrec_interaction",
            layers.AdRecInteraction(
                num_layers=2,
                num_heads=2,
                ffn_dim=12,
                dropout=0.0,
                positional_embedding=True,
                **interaction_kwargs,
            ),
            [x],
            {},
            False,
        )
    )
    result.append(("dot_interaction", layers.DotInteraction(), [x], {}, False))
    result.append(
        ("factorization_machine", layers.FactorizationMachine(), [x], {}, False)
    )
    result.append(
        (
            "cross_network",
            layers.CrossNetwork(num_layers=2, projection_dim=6),
            [x],
            {},
            False,
        )
    )
    result.append(
        (
            "autoint_interaction",
            layers.AutoIntInteraction(num_layers=2, num_heads=2, key_dim=4),
            [x],
            {},
            False,
        )
    )
    return result


def _threshold_margin(layer, inputs, call_kwargs):
    """Smallest `|p - theta| / theta` over the first-pass probabilities."""
    query, value = inputs
    maps = layer.compute_attention_maps(
        query, value, attention_mask=call_kwargs.get("attention_mask")
    )
    p = keras.ops.convert_to_numpy(maps["unmasked"]).astype("float64")
    theta = np.asarray(layer.mask_thresholds)[None, :, None, None]
    return np.min(np.abs(p - theta) / theta)


def run_case(name, layer, inputs, call_kwargs, has_thresholds):
    """Build `layer`, set its weights, return its arrays keyed for npz."""
    layer.build(*[a.shape for a in inputs])
    rng = np.random.default_rng(7)
    arrays = {}
    for variable in layer.trainable_weights:
        value = (0.4 * rng.normal(size=variable.shape)).astype("float32")
        variable.assign(value)
        arrays[f"{name}/weight/{variable.path}"] = value
    trainable = [np.asarray(v.numpy()) for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    if "training" in inspect.signature(layer.call).parameters:
        call_kwargs = dict(call_kwargs, training=False)
    probe_shape = layer.compute_output_shape(*[a.shape for a in inputs])
    probe = np.random.default_rng(11).normal(size=probe_shape)
    probe = probe.astype("float32")
    num_inputs = len(inputs)

    def loss_fn(tensors):
        output, _ = layer.stateless_call(
            tensors[num_inputs:],
            non_trainable,
            *tensors[:num_inputs],
            **call_kwargs,
        )
        return keras.ops.sum(output * probe), output

    output, grads = output_and_gradients(loss_fn, list(inputs) + trainable)
    arrays[f"{name}/output"] = output
    for index in range(num_inputs):
        arrays[f"{name}/d_input/{index}"] = grads[index]
    for variable, grad in zip(layer.trainable_variables, grads[num_inputs:]):
        arrays[f"{name}/d_weight/{variable.path}"] = grad
    if has_thresholds and keras.backend.backend() == "tensorflow":
        # The keep decision is equal on both backends while no probability
        # sits within float32 noise of its threshold; one backend suffices.
        arrays[f"{name}/margin"] = _threshold_margin(layer, inputs, call_kwargs)
    return arrays


def main(path):
    keras.utils.set_random_seed(0)
    arrays = {"backend": np.asarray(keras.backend.backend())}
    for case in cases():
        arrays.update(run_case(*case))
    np.savez(path, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
