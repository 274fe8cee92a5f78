"""Placeholder: being written."""


class AutoIntInteraction:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("AutoIntInteraction is not written yet")
