"""Fixtures of the attention tests."""

import keras
import pytest


@pytest.fixture(autouse=True)
def seeded():
    # Unseeded initializers and dropout become reproducible.
    keras.utils.set_random_seed(1234)


@pytest.fixture
def mixed_float16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
