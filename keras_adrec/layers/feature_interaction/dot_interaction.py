"""Placeholder: being written."""


class DotInteraction:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("DotInteraction is not written yet")
