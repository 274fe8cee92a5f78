"""The one decorator every public keras_adrec class uses."""

import keras


def keras_adrec_export(cls):
    """Register `cls` for Keras serialization under the `keras_adrec` package.

    Every public layer and model of the library carries this decorator, so a
    saved `.keras` file names it as `keras_adrec>ClassName` and
    `keras.saving.load_model` rebuilds it without `custom_objects`.
    """
    return keras.saving.register_keras_serializable(package="keras_adrec")(cls)
