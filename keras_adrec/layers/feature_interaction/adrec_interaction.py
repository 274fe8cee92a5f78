"""Placeholder: being written."""


class AdRecInteraction:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("AdRecInteraction is not written yet")
