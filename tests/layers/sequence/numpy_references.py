"""Independent NumPy versions of the sequential layers, for the tests.

Each function recomputes a layer's output from its weights with the
textbook formulas, without Keras ops.
"""

import keras
import numpy as np


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def relu(x):
    return np.maximum(x, 0.0)


def mlp(x, mlp_layer, final=None, hidden=relu):
    """A `keras_adrec.layers.MLP` from its Dense weights."""
    count = len(mlp_layer.dense_layers)
    for index, dense in enumerate(mlp_layer.dense_layers):
        x = x @ to_numpy(dense.kernel) + to_numpy(dense.bias)
        activation = final if index == count - 1 else hidden
        if activation is not None:
            x = activation(x)
    return x


def time_series_layer(layer, candidate, history):
    """TBSM's TSL_Net (model_type tsl) for every head, concatenated."""
    w = np.asarray(candidate, np.float64)
    h = np.asarray(history, np.float64)
    if layer.projection:
        w = w / np.linalg.norm(w, axis=-1, keepdims=True)
        h = h / np.linalg.norm(h, axis=-1, keepdims=True)
    contexts = []
    for head in range(layer.num_heads):
        columns = w.T  # TBSM's x: one column per sample
        if layer.inner != "dot":
            a = to_numpy(layer.inner_kernels[head])
            columns = a @ columns
            if layer.inner == "def":
                columns = a.T @ columns
        coefficients = np.stack(
            [h[b] @ columns[:, b] for b in range(len(w))]
        )  # [B, T-1]
        if layer.mechanism == "mlp":
            weights = mlp(
                coefficients, layer.attention_mlps[head], final=sigmoid
            )
        elif layer.mechanism == "softmax":
            weights = softmax(coefficients)
        else:
            weights = coefficients
        contexts.append(np.stack([weights[b] @ h[b] for b in range(len(w))]))
    return np.concatenate(contexts, axis=-1)


def multi_head_attention(attention, query, key_value):
    """`keras.layers.MultiHeadAttention` (no mask, no dropout)."""

    def project(dense, x):
        return np.einsum("btw,whd->bthd", x, to_numpy(dense.kernel)) + (
            to_numpy(dense.bias)
        )

    q = project(attention._query_dense, query)
    k = project(attention._key_dense, key_value)
    v = project(attention._value_dense, key_value)
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    scores = softmax(logits, axis=-1)
    heads = np.einsum("bhqk,bkhd->bqhd", scores, v)
    output = attention._output_dense
    return np.einsum("bqhd,hdo->bqo", heads, to_numpy(output.kernel)) + (
        to_numpy(output.bias)
    )


def lstm(cell, sequence):
    """Keras's LSTM cell (gates i, f, c, o) from zero states."""
    kernel = to_numpy(cell.kernel)
    recurrent = to_numpy(cell.recurrent_kernel)
    bias = to_numpy(cell.bias)
    units = recurrent.shape[0]
    h = np.zeros((sequence.shape[0], units))
    c = np.zeros_like(h)
    outputs = []
    for t in range(sequence.shape[1]):
        z = sequence[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def gru(cell, sequence):
    """Keras's GRU cell with `reset_after=True` from a zero state."""
    kernel = to_numpy(cell.kernel)
    recurrent = to_numpy(cell.recurrent_kernel)
    input_bias, recurrent_bias = to_numpy(cell.bias)
    h = np.zeros((sequence.shape[0], recurrent.shape[0]))
    outputs = []
    for t in range(sequence.shape[1]):
        x_z, x_r, x_h = np.split(sequence[:, t] @ kernel + input_bias, 3, -1)
        r_z, r_r, r_h = np.split(h @ recurrent + recurrent_bias, 3, -1)
        z = sigmoid(x_z + r_z)
        r = sigmoid(x_r + r_r)
        h = z * h + (1.0 - z) * np.tanh(x_h + r * r_h)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def layer_norm(norm, x):
    mean = x.mean(axis=-1, keepdims=True)
    variance = x.var(axis=-1, keepdims=True)
    normalized = (x - mean) / np.sqrt(variance + norm.epsilon)
    return normalized * to_numpy(norm.gamma) + to_numpy(norm.beta)


def transformer_context(layer, candidate, history):
    """`TransformerContext` without dropout, from its weights."""
    x = np.concatenate([history, candidate[:, None, :]], axis=1)
    for index in range(layer.num_layers):
        attention = layer.attention_layers[index]
        hidden = layer.ffn_hidden_layers[index]
        output = layer.ffn_output_layers[index]

        def ffn(y):
            y = relu(y @ to_numpy(hidden.kernel) + to_numpy(hidden.bias))
            return y @ to_numpy(output.kernel) + to_numpy(output.bias)

        first = layer.attention_norms[index]
        second = layer.ffn_norms[index]
        if layer.norm_first:
            y = layer_norm(first, x)
            x = x + multi_head_attention(attention, y, y)
            x = x + ffn(layer_norm(second, x))
        else:
            x = layer_norm(first, x + multi_head_attention(attention, x, x))
            x = layer_norm(second, x + ffn(x))
    if layer.pooling == "mean":
        return x.mean(axis=1)
    return x[:, -1]
