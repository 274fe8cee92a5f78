"""Placeholder: being written."""


class FactorizationMachine:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("FactorizationMachine is not written yet")
