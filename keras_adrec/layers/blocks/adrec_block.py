"""Placeholder: being written."""


class AdRecBlock:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("AdRecBlock is not written yet")
