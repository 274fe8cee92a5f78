"""The input contract shared by the baseline feature-interaction layers.

Every interaction of the DLRM skeleton takes the N+1 feature vectors of one
sample: the bottom-MLP output followed by the N embeddings, all of size D.
They arrive either as a list of N+1 tensors of shape `[B, D]` or as one
tensor of shape `[B, N+1, D]`. The helpers here check that contract once,
in `build()`, and turn either form into one `[B, N+1, D]` tensor in `call()`.
"""

from keras import ops


def _is_shape_list(input_shape):
    """True when `input_shape` holds one shape per tensor of a list."""
    return isinstance(input_shape, (list, tuple)) and all(
        isinstance(shape, (list, tuple)) for shape in input_shape
    )


def parse_feature_shape(input_shape, layer_name):
    """Check the feature input contract and read its sizes.

    Args:
        input_shape: the shape of a `[B, N+1, D]` tensor, or a list of the
            shapes of N+1 tensors of shape `[B, D]`.
        layer_name: str. The layer class name, for error messages.

    Returns:
        A tuple `(batch_size, num_features, feature_dim)`; `batch_size` may
        be `None`.

    Raises:
        ValueError: fewer than 2 feature vectors, wrong ranks, an unknown
            or mismatched feature size D.
    """
    if _is_shape_list(input_shape):
        shapes = [tuple(shape) for shape in input_shape]
        if len(shapes) < 2:
            raise ValueError(
                f"`{layer_name}` expects a list of at least 2 feature "
                "tensors (the bottom-MLP output and at least one "
                f"embedding). Received a list of {len(shapes)}."
            )
        for index, shape in enumerate(shapes):
            if len(shape) != 2:
                raise ValueError(
                    f"`{layer_name}` expects every tensor of the input list "
                    "to have shape `[batch_size, D]`. Received shape "
                    f"{shape} at index {index}."
                )
        dims = [shape[-1] for shape in shapes]
        batch_size = shapes[0][0]
        num_features = len(shapes)
    else:
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"`{layer_name}` expects a list of `[batch_size, D]` tensors "
                "or one tensor of shape `[batch_size, num_features, D]`. "
                f"Received shape {shape}."
            )
        batch_size, num_features, feature_dim = shape
        if num_features is None or num_features < 2:
            raise ValueError(
                f"`{layer_name}` expects at least 2 feature vectors (the "
                "bottom-MLP output and at least one embedding) on axis 1. "
                f"Received shape {shape}."
            )
        dims = [feature_dim]
    if any(dim is None for dim in dims):
        raise ValueError(
            f"`{layer_name}` needs the feature size D to be known. "
            f"Received feature sizes {dims}."
        )
    if len(set(dims)) != 1:
        raise ValueError(
            f"`{layer_name}` expects all feature vectors to have the same "
            f"size D. Received feature sizes {dims}."
        )
    return batch_size, num_features, dims[0]


def stack_features(inputs):
    """Return the features as one `[B, N+1, D]` tensor."""
    if isinstance(inputs, (list, tuple)):
        return ops.stack(list(inputs), axis=1)
    return inputs
