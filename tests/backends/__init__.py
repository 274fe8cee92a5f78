"""Tests that run the layers and models on more than one Keras backend."""
