"""Placeholder: being written."""


class MLP:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("MLP is not written yet")
