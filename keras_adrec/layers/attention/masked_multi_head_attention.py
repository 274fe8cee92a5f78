"""Placeholder: being written."""


class MaskedMultiHeadAttention:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("MaskedMultiHeadAttention is not written yet")
