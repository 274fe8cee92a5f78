"""Inverted dropout whose TensorFlow mask is a counter hash of the index.

`stateless_dropout(inputs, rate, seed_generator)` has the semantics of
`keras.random.dropout`. On TensorFlow the keep decisions come from an
integer hash of each entry's flat index and the seed: integer multiplies,
shifts and xors that XLA fuses into one loop, and the same mask with and
without XLA. `keras.random.dropout` leaves TensorFlow's algorithm to
`auto_select`, which XLA on CPU lowers to ThreeFry, many times slower
than the hash. A dropout mask needs independent, unbiased keep decisions,
not a cryptographic generator; the tests check the rate, the dependence on
the seed and the correlation of neighbouring entries. Other backends use
`keras.random.dropout`.
"""

import keras

# Constants of the counter hash: the golden-ratio increment and the two
# multipliers of Wellons' `lowbias32` integer hash (hash-prospector), a
# murmur3-style finaliser with lower bias.
_HASH_INCREMENT = 0x9E3779B9
_HASH_MULTIPLIERS = (0x7FEB352D, 0x846CA68B)


def _uniform_bits_tf(shape, seed):
    """uint32 bits for every entry of `shape` from a counter hash.

    `bits[i] = lowbias32((i * 0x9E3779B9 + seed[0]) ^ seed[1])` over the
    flat index `i`.
    """
    import tensorflow as tf

    def shift_xor(x, bits):
        return tf.bitwise.bitwise_xor(
            x, tf.bitwise.right_shift(x, tf.constant(bits, tf.uint32))
        )

    key = tf.bitcast(tf.cast(seed, tf.int32), tf.uint32)
    index = tf.bitcast(
        tf.range(tf.reduce_prod(shape), dtype=tf.int32), tf.uint32
    )
    x = index * tf.constant(_HASH_INCREMENT, tf.uint32) + key[0]
    x = tf.bitwise.bitwise_xor(x, key[1])
    x = shift_xor(x, 16) * tf.constant(_HASH_MULTIPLIERS[0], tf.uint32)
    x = shift_xor(x, 15) * tf.constant(_HASH_MULTIPLIERS[1], tf.uint32)
    return tf.reshape(shift_xor(x, 16), shape)


def dropout_keep_mask_tf(shape, rate, seed, use_hash=True):
    """Boolean keep mask of inverted dropout, on the TensorFlow backend.

    Each entry is kept with probability `1 - rate`. The decisions come
    from the counter hash (`use_hash=True`, what `stateless_dropout` uses)
    or from Philox (`tf.random.stateless_uniform(alg="philox")`).

    Args:
        shape: the mask's shape (a shape tensor or list).
        rate: float in (0, 1). Drop probability.
        seed: int32 tensor of shape (2,).
        use_hash: bool. The counter hash (`True`) or Philox.
            Defaults to `True`.

    Returns:
        A boolean tensor of `shape`.
    """
    import tensorflow as tf

    if use_hash:
        bits = _uniform_bits_tf(shape, seed)
        # Drop when bits < rate * 2**32: probability rate, within 2**-32.
        threshold = min(int(round(rate * 2.0**32)), 2**32 - 1)
        return bits >= tf.constant(threshold, tf.uint32)
    seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    noise = tf.random.stateless_uniform(
        shape, seed=seed, dtype=tf.float32, alg="philox"
    )
    return noise >= rate


def stateless_dropout(inputs, rate, seed_generator):
    """Inverted dropout that stays fast with and without XLA on CPU.

    Each entry is zeroed with probability `rate` and the kept ones are
    scaled by `1 / (1 - rate)`, as by `keras.random.dropout`.

    Args:
        inputs: tensor to drop entries of.
        rate: float in [0, 1). Fraction of entries to drop.
        seed_generator: `keras.random.SeedGenerator`, advanced once per call.

    Returns:
        A tensor with the shape and dtype of `inputs`.
    """
    if rate <= 0.0:
        return inputs
    if keras.backend.backend() != "tensorflow":
        return keras.random.dropout(inputs, rate, seed=seed_generator)
    import tensorflow as tf

    keep = dropout_keep_mask_tf(tf.shape(inputs), rate, seed_generator.next())
    # One select of two scalars and one multiply: the backward pass is a
    # single multiply by the same mask.
    mask = tf.where(keep, 1.0 / (1.0 - rate), 0.0)
    return inputs * tf.cast(mask, inputs.dtype)
