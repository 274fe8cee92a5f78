"""Placeholder: being written."""


class CrossNetwork:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("CrossNetwork is not written yet")
